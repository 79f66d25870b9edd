// The executor of a parsed Go template against strata's data (see values.ts for how JS values
// stand for Go's). It follows text/template's evaluation order and error wording, including the
// `template: :LINE:COL: executing "" at <NODE>: …` context docker prints.

import { FUNC_NAMES, FUNCS, FuncError, type GoFunc, type ParamType } from './funcs.js';
import { lineCol, TemplateSyntaxError } from './lex.js';
import { argString, commandString, parse, pipeString, type Arg, type BranchNode, type Command, type Node, type Pipe } from './parse.js';
import { entriesOf, formatV, GoFloat, goType, isInt, isMap, isStruct, isTrue, mapGet, NO_VALUE } from './values.js';

export interface ExecOptions {
  /** Go's Option("missingkey=…"): docker's inspect uses "error" on its JSON fallback. */
  missingKey?: 'default' | 'error';
  /** The function set: FUNCS, or HEADER_FUNCS for a table's header row. */
  funcs?: Record<string, GoFunc>;
}

/** A run-time failure, worded as Go words it; `partial` is what was written before it. */
export class TemplateExecError extends Error {
  constructor(
    message: string,
    readonly partial: string,
  ) {
    super(message);
    this.name = 'TemplateExecError';
  }
}

export interface Template {
  readonly src: string;
  readonly nodes: Node[];
}

/** Parse `src`; throws TemplateSyntaxError (from lex.ts) with Go's message. */
export function compile(src: string): Template {
  try {
    return { src, nodes: parse(src, FUNC_NAMES) };
  } catch (err) {
    // Thousands of nested parentheses or blocks exhaust the stack: still a one-line error.
    if (err instanceof RangeError) throw new TemplateSyntaxError(1, 'template nested too deeply');
    throw err;
  }
}

/** A number literal's value: integral floats (`2.0`) are boxed so they stay float64. */
function numberValue(n: Extract<Arg, { kind: 'number' }>): unknown {
  return !n.isInt && Number.isInteger(n.val) ? new GoFloat(n.val) : n.val;
}

const NO_FINAL: unique symbol = Symbol('no final');
type Final = unknown;

class BreakSignal {}
class ContinueSignal {}

/** Where a value came from: a map (an interface{} in Go), a JS Map (a typed Go map), or elsewhere. */
type From = 'value' | 'map' | 'typedMap';

/** The node an error would be reported at; its text is built only when an error happens. */
interface At {
  pos: number;
  text: () => string;
}

class State {
  private readonly out: string[] = [];
  private readonly vars: { name: string; value: unknown }[] = [];
  private at: At = { pos: 0, text: () => '' };
  private readonly funcs: Record<string, GoFunc>;
  private readonly missingKeyError: boolean;

  constructor(
    private readonly src: string,
    opts: ExecOptions,
  ) {
    this.funcs = opts.funcs ?? FUNCS;
    this.missingKeyError = opts.missingKey === 'error';
  }

  run(nodes: Node[], data: unknown): string {
    this.vars.push({ name: '$', value: data });
    this.walk(data, nodes);
    return this.out.join('');
  }

  private setAt(pos: number, text: () => string): void {
    this.at = { pos, text };
  }

  private errorf(detail: string): never {
    const [line, col] = lineCol(this.src, this.at.pos);
    throw new TemplateExecError(`template: :${line}:${col}: executing "" at <${this.at.text()}>: ${detail}`, this.out.join(''));
  }

  private walk(dot: unknown, nodes: Node[]): void {
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          this.out.push(n.text);
          break;
        case 'action': {
          const v = this.evalPipeline(dot, n.pipe);
          if (n.pipe.decl.length === 0) this.out.push(formatV(v, true));
          break;
        }
        case 'if':
        case 'with': {
          const mark = this.vars.length;
          const v = this.evalPipeline(dot, n.pipe);
          if (isTrue(v)) this.walk(n.kind === 'with' ? v : dot, n.list);
          else if (n.elseList) this.walk(dot, n.elseList);
          this.vars.length = mark;
          break;
        }
        case 'range':
          this.walkRange(dot, n);
          break;
        case 'template':
          this.setAt(n.pos, () => n.text);
          this.errorf(`template ${JSON.stringify(n.name)} not defined`);
          break;
        case 'break':
          throw new BreakSignal();
        case 'continue':
          throw new ContinueSignal();
      }
    }
  }

  private walkRange(dot: unknown, n: BranchNode): void {
    const mark = this.vars.length;
    const v = this.evalPipeline(dot, n.pipe);
    let items: [unknown, unknown][];
    if (v === null || v === undefined || v === NO_VALUE) items = [];
    else if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
    else if (isMap(v) && !isStruct(v)) items = entriesOf(v);
    else this.errorf(`range can't iterate over ${formatV(v, false)}`);
    const decl = n.pipe.decl;
    for (const [key, elem] of items) {
      // The pipeline pushed its declared variables; each iteration rebinds them: $v, or $k, $v.
      if (decl.length === 1) this.vars[this.vars.length - 1].value = elem;
      if (decl.length === 2) {
        this.vars[this.vars.length - 2].value = key;
        this.vars[this.vars.length - 1].value = elem;
      }
      const inner = this.vars.length;
      try {
        this.walk(elem, n.list);
      } catch (e) {
        if (e instanceof BreakSignal) {
          this.vars.length = inner;
          break;
        }
        if (!(e instanceof ContinueSignal)) throw e;
      }
      this.vars.length = inner;
    }
    if (items.length === 0 && n.elseList) this.walk(dot, n.elseList);
    this.vars.length = mark;
  }

  private evalPipeline(dot: unknown, pipe: Pipe): unknown {
    this.setAt(pipe.pos, () => pipeString(pipe));
    let value: unknown = NO_FINAL;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    for (const name of pipe.decl) {
      if (pipe.isAssign) this.setVar(name, value);
      else this.vars.push({ name, value });
    }
    return value;
  }

  private setVar(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i].name === name) {
        this.vars[i].value = value;
        return;
      }
    }
    this.errorf(`undefined variable: ${name}`);
  }

  private varValue(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i].name === name) return this.vars[i].value;
    this.errorf(`undefined variable: ${name}`);
  }

  private notAFunction(args: Arg[], final: Final): void {
    if (args.length > 1 || final !== NO_FINAL) this.errorf(`can't give argument to non-function ${argString(args[0])}`);
  }

  private evalCommand(dot: unknown, cmd: Command, final: Final): unknown {
    const first = cmd.args[0];
    switch (first.kind) {
      case 'field':
        return this.evalFieldNode(dot, first, cmd.args, final);
      case 'chain':
        return this.evalChainNode(dot, first, cmd.args, final);
      case 'identifier':
        return this.evalFunction(dot, first, cmd, cmd.args, final);
      case 'pipe':
        this.notAFunction(cmd.args, final);
        return this.evalPipeline(dot, first.pipe);
      case 'variable':
        return this.evalVariableNode(dot, first, cmd.args, final);
    }
    this.setAt(first.pos, () => argString(first));
    this.notAFunction(cmd.args, final);
    switch (first.kind) {
      case 'bool':
        return first.val;
      case 'dot':
        return dot;
      case 'nil':
        this.errorf('nil is not a command');
        break;
      case 'number':
        return numberValue(first);
      case 'string':
        return first.val;
    }
  }

  private evalFieldNode(dot: unknown, field: Extract<Arg, { kind: 'field' }>, args: Arg[], final: Final): unknown {
    this.setAt(field.pos, () => argString(field));
    return this.evalFieldChain(dot, dot, field.names, args, final, 'value');
  }

  private evalChainNode(dot: unknown, chain: Extract<Arg, { kind: 'chain' }>, args: Arg[], final: Final): unknown {
    this.setAt(chain.pos, () => argString(chain));
    const receiver = this.evalArg(dot, 'any', chain.node);
    return this.evalFieldChain(dot, receiver, chain.names, args, final, 'value');
  }

  private evalVariableNode(dot: unknown, v: Extract<Arg, { kind: 'variable' }>, args: Arg[], final: Final): unknown {
    this.setAt(v.pos, () => argString(v));
    const value = this.varValue(v.name);
    if (v.names.length === 0) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(dot, value, v.names, args, final, 'value');
  }

  /**
   * `.A.B.C`: every step but the last takes no arguments. `from` says where the receiver came from:
   * out of a map it is an interface{} (Go names that type in errors), out of a JS Map (a typed Go
   * map) a missing key stays `<no value>` down the chain, as in docker's typed pass.
   */
  private evalFieldChain(dot: unknown, receiver: unknown, names: string[], args: Arg[], final: Final, from: From): unknown {
    let r = receiver;
    let f = from;
    for (let i = 0; i < names.length; i++) {
      const last = i === names.length - 1;
      [r, f] = this.evalField(dot, names[i], last ? args : [], last ? final : NO_FINAL, r, f);
    }
    return r;
  }

  private evalField(dot: unknown, name: string, args: Arg[], final: Final, receiver: unknown, from: From): [unknown, From] {
    if (receiver === null || receiver === undefined || receiver === NO_VALUE) {
      if (this.missingKeyError && from !== 'typedMap') this.errorf(`nil data; no entry for key ${JSON.stringify(name)}`);
      return [NO_VALUE, from];
    }
    const hasArgs = args.length > 1 || final !== NO_FINAL;
    if (isStruct(receiver)) {
      const own = Object.prototype.hasOwnProperty.call(receiver, name);
      const method = !own && typeof receiver[name] === 'function' && !(name in Object.prototype);
      if ((own && receiver[name] !== undefined) || method) return [this.fieldOrMethod(dot, receiver, name, args, final), 'value'];
      this.errorf(`can't evaluate field ${name} in type ${goType(receiver)}`);
    }
    if (isMap(receiver)) {
      const typed = receiver instanceof Map;
      const v = mapGet(receiver, name);
      // A function in a map is a method of the map's type, as docker's header map has Label().
      if (typeof v === 'function') return [this.fieldOrMethod(dot, receiver, name, args, final), 'value'];
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      if (v === NO_VALUE && this.missingKeyError && !typed) this.errorf(`map has no entry for key ${JSON.stringify(name)}`);
      return [v, typed ? 'typedMap' : 'map'];
    }
    this.errorf(`can't evaluate field ${name} in type ${from === 'map' ? 'interface {}' : goType(receiver)}`);
  }

  /** A struct field's value, or the result of calling it when it is a method. */
  private fieldOrMethod(dot: unknown, receiver: object, name: string, args: Arg[], final: Final): unknown {
    const value = receiver instanceof Map ? receiver.get(name) : (receiver as Record<string, unknown>)[name];
    if (typeof value === 'function') {
      const fn = value as (...a: unknown[]) => unknown;
      const sig: GoFunc = { params: Array.from({ length: fn.length }, () => 'any' as ParamType), call: (...a) => fn.apply(receiver, a) };
      return this.evalCall(dot, sig, { ...this.at }, name, args, final);
    }
    if (args.length > 1 || final !== NO_FINAL) this.errorf(`${name} has arguments but cannot be invoked as function`);
    return value;
  }

  private evalFunction(dot: unknown, ident: Extract<Arg, { kind: 'identifier' }>, cmd: Command | null, args: Arg[], final: Final): unknown {
    this.setAt(ident.pos, () => ident.name);
    const name = ident.name;
    const ctx: At = cmd ? { pos: cmd.pos, text: () => commandString(cmd) } : { pos: ident.pos, text: () => ident.name };
    if (name === 'and' || name === 'or') {
      const rest = args.slice(1);
      const numIn = rest.length + (final !== NO_FINAL ? 1 : 0);
      if (numIn < 1) this.errorf(`wrong number of args for ${name}: want at least 1 got 0`);
      let v: unknown = undefined;
      for (const a of rest) {
        v = this.evalArg(dot, 'any', a);
        if (isTrue(v) === (name === 'or')) return v;
      }
      return final !== NO_FINAL ? final : v;
    }
    const fn = this.funcs[name];
    if (!fn) this.errorf(`${JSON.stringify(name)} is not a defined function`);
    return this.evalCall(dot, fn, ctx, name, args, final);
  }

  /** Check the argument count and types, call, and word a returned error as Go does. */
  private evalCall(dot: unknown, fn: GoFunc, ctx: At, name: string, args: Arg[], final: Final): unknown {
    const argNodes = args.slice(1);
    const numIn = argNodes.length + (final !== NO_FINAL ? 1 : 0);
    const fixed = fn.params.length;
    if (fn.variadic) {
      if (numIn < fixed) this.errorf(`wrong number of args for ${name}: want at least ${fixed} got ${numIn}`);
    } else if (numIn !== fixed) {
      this.errorf(`wrong number of args for ${name}: want ${fixed} got ${numIn}`);
    }
    const typeAt = (k: number): ParamType => (k < fixed ? fn.params[k] : (fn.variadic as ParamType));
    const argv = argNodes.map((a, k) => this.evalArg(dot, typeAt(k), a));
    if (final !== NO_FINAL) argv.push(this.validateType(final, typeAt(argNodes.length)));
    try {
      return fn.call(...argv);
    } catch (e) {
      if (!(e instanceof FuncError)) throw e;
      this.at = ctx;
      this.errorf(`error calling ${name}: ${e.message}`);
    }
  }

  private evalArg(dot: unknown, type: ParamType, n: Arg): unknown {
    this.setAt(n.pos, () => argString(n));
    switch (n.kind) {
      case 'dot':
        return this.validateType(dot, type);
      case 'nil':
        if (type === 'any' || type === '[]string') return null;
        this.errorf(`cannot assign nil to ${type}`);
        break;
      case 'field':
        return this.validateType(this.evalFieldNode(dot, n, [n], NO_FINAL), type);
      case 'variable':
        return this.validateType(this.evalVariableNode(dot, n, [], NO_FINAL), type);
      case 'pipe':
        return this.validateType(this.evalPipeline(dot, n.pipe), type);
      case 'identifier':
        return this.validateType(this.evalFunction(dot, n, null, [n], NO_FINAL), type);
      case 'chain':
        return this.validateType(this.evalChainNode(dot, n, [], NO_FINAL), type);
      case 'string':
        if (type === 'any' || type === 'string') return n.val;
        break;
      case 'number':
        if (type === 'any' || (type === 'int' && n.isInt)) return numberValue(n);
        if (type === 'string') this.errorf(`expected string; found ${argString(n)}`);
        if (type === 'int') this.errorf(`expected integer; found ${argString(n)}`);
        break;
      case 'bool':
        if (type === 'any') return n.val;
        break;
    }
    if (type === 'string') this.errorf(`expected string; found ${argString(n)}`);
    if (type === 'int') this.errorf(`expected integer; found ${argString(n)}`);
    this.errorf(`can't handle ${argString(n)} for arg of type ${type}`);
  }

  private validateType(v: unknown, type: ParamType): unknown {
    const missing = v === null || v === undefined || v === NO_VALUE;
    switch (type) {
      case 'any':
        return v === NO_VALUE ? null : v;
      case 'string':
        if (typeof v === 'string') return v;
        break;
      case 'int':
        if (isInt(v)) return Number(v);
        break;
      case '[]string':
        if (missing) return [];
        if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
        break;
    }
    if (missing) this.errorf(`invalid value; expected ${type}`);
    this.errorf(`wrong type for value; expected ${type}; got ${goType(v)}`);
  }
}

/** Run a compiled template against `data`; throws TemplateExecError with Go's message. */
/** A part of a plain template: literal text, or the name of a field of dot. */
export type PlainPart = string | { field: string };

/**
 * The parts of a template made only of text and `{{.Field}}` actions (every list command's
 * default table), else null. Such a template prints a string field as it is, so a list of
 * thousands of rows need not go through the evaluator for each (see runPlain).
 */
export function plainParts(t: Template): PlainPart[] | null {
  const parts: PlainPart[] = [];
  for (const n of t.nodes) {
    if (n.kind === 'text') parts.push(n.text);
    else if (n.kind !== 'action' || n.pipe.decl.length > 0 || n.pipe.cmds.length !== 1 || n.pipe.cmds[0].args.length !== 1) return null;
    else {
      const arg = n.pipe.cmds[0].args[0];
      if (arg.kind !== 'field' || arg.names.length !== 1) return null;
      parts.push({ field: arg.names[0] });
    }
  }
  return parts;
}

/**
 * What execute prints for plain parts over a struct whose named fields are all own strings;
 * null for any other row (a missing field, a method, another type), which then goes through
 * execute for its exact output or error.
 */
export function runPlain(parts: PlainPart[], row: Record<string, unknown>): string | null {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += p;
    else {
      if (!Object.prototype.hasOwnProperty.call(row, p.field)) return null;
      const v = row[p.field];
      if (typeof v !== 'string') return null;
      out += v;
    }
  }
  return out;
}

export function execute(t: Template, data: unknown, opts: ExecOptions = {}): string {
  try {
    return new State(t.src, opts).run(t.nodes, data);
  } catch (err) {
    if (err instanceof RangeError) throw new TemplateExecError('template: :1: exceeded maximum template depth', '');
    throw err;
  }
}
