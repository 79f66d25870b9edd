// The parser of Go's text/template (the subset docker's --format uses) from tokens to an AST.
// Like Go it checks at parse time that every function exists and every variable is declared,
// so a template with a typo fails before any output is written.

import { lex, TemplateSyntaxError, type Token } from './lex.js';

export type Arg =
  | { kind: 'field'; names: string[]; pos: number }
  | { kind: 'variable'; name: string; names: string[]; pos: number }
  | { kind: 'dot'; pos: number }
  | { kind: 'identifier'; name: string; pos: number }
  | { kind: 'chain'; node: Arg; names: string[]; pos: number }
  | { kind: 'pipe'; pipe: Pipe; pos: number }
  | { kind: 'string'; text: string; val: string; pos: number }
  | { kind: 'number'; text: string; val: number; isInt: boolean; isChar: boolean; pos: number }
  | { kind: 'bool'; val: boolean; pos: number }
  | { kind: 'nil'; pos: number };

export interface Command {
  args: Arg[];
  pos: number;
}

export interface Pipe {
  decl: string[];
  /** `$x = value` (assignment to an existing variable) rather than `$x := value`. */
  isAssign: boolean;
  cmds: Command[];
  pos: number;
}

export interface BranchNode {
  kind: 'if' | 'with' | 'range';
  pipe: Pipe;
  list: Node[];
  elseList: Node[] | null;
  pos: number;
}

export type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipe; pos: number }
  | BranchNode
  | { kind: 'template'; name: string; pos: number; text: string }
  | { kind: 'break' | 'continue'; pos: number };

/** Go's String() of an argument, used in `executing "" at <…>` error contexts. */
export function argString(a: Arg): string {
  switch (a.kind) {
    case 'field':
      return '.' + a.names.join('.');
    case 'variable':
      return [a.name, ...a.names].join('.');
    case 'dot':
      return '.';
    case 'identifier':
      return a.name;
    case 'chain':
      return argString(a.node) + '.' + a.names.join('.');
    case 'pipe':
      return '(' + pipeString(a.pipe) + ')';
    case 'string':
    case 'number':
      return a.text;
    case 'bool':
      return String(a.val);
    case 'nil':
      return 'nil';
  }
}

export function commandString(c: Command): string {
  return c.args.map(argString).join(' ');
}

export function pipeString(p: Pipe): string {
  const decl = p.decl.length ? p.decl.join(', ') + (p.isAssign ? ' = ' : ' := ') : '';
  return decl + p.cmds.map(commandString).join(' | ');
}

/** Parse a number literal the way Go's template parser types it: int when it has no fraction. */
function parseNumber(tok: Token): { val: number; isInt: boolean } {
  const t = tok.text.replace(/_/g, '');
  const sign = t.startsWith('-') ? -1 : 1;
  const body = t.replace(/^[+-]/, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) return { val: sign * parseInt(body.slice(2), 16), isInt: true };
  if (/^0[bB][01]+$/.test(body)) return { val: sign * parseInt(body.slice(2), 2), isInt: true };
  if (/^0[oO][0-7]+$/.test(body)) return { val: sign * parseInt(body.slice(2), 8), isInt: true };
  if (/^0[0-7]+$/.test(body)) return { val: sign * parseInt(body, 8), isInt: true };
  if (/^[0-9]+$/.test(body)) return { val: sign * Number(body), isInt: true };
  const v = Number(t);
  if (!Number.isFinite(v)) throw new TemplateSyntaxError(tok.line, `illegal number syntax: ${JSON.stringify(tok.text)}`);
  // Go hands 2.0 or 1e3 to functions as float64; strata's values keep one number type, so an
  // integral float prints as Go prints float64(2) with %v ("2") and only %d/%T tell them apart.
  return { val: v, isInt: false };
}

class Parser {
  private i = 0;
  private vars: string[] = ['$'];
  /** How many {{range}} bodies enclose the current item: {{break}} and {{continue}} need one. */
  private rangeDepth = 0;

  constructor(
    private readonly toks: Token[],
    private readonly funcs: ReadonlySet<string>,
  ) {}

  private peek(): Token {
    return this.toks[this.i];
  }
  private next(): Token {
    return this.toks[this.i++];
  }
  private fail(tok: Token, detail: string): never {
    throw new TemplateSyntaxError(tok.line, detail);
  }
  private unexpected(tok: Token, context: string): never {
    const shown = tok.type === 'eof' ? 'EOF' : tok.type === 'right' ? '"}}"' : JSON.stringify(tok.text);
    this.fail(tok, `unexpected ${shown} in ${context}`);
  }

  parseTemplate(): Node[] {
    const [list, end] = this.itemList();
    if (end) this.fail(end.tok, `unexpected {{${end.word}}}`);
    return list;
  }

  /**
   * Items up to EOF or a `{{end}}`/`{{else}}`; returns the closing keyword (already consumed up to
   * the keyword itself) so the caller decides whether it is allowed there.
   */
  private itemList(): [Node[], { word: 'end' | 'else'; tok: Token } | null] {
    const list: Node[] = [];
    for (;;) {
      const tok = this.next();
      if (tok.type === 'eof') {
        this.i--;
        return [list, null];
      }
      if (tok.type === 'text') {
        list.push({ kind: 'text', text: tok.val });
        continue;
      }
      // tok is '{{'
      const first = this.peek();
      if (first.type === 'keyword') {
        switch (first.val) {
          case 'end':
          case 'else':
            this.next();
            return [list, { word: first.val, tok: first }];
          case 'if':
          case 'with':
          case 'range':
            this.next();
            list.push(this.control(first.val, first));
            continue;
          case 'template':
            list.push(this.templateCall());
            continue;
          case 'break':
          case 'continue':
            this.next();
            if (this.rangeDepth === 0) this.fail(first, `{{${first.val}}} outside {{range}}`);
            this.expectRight(first.val);
            list.push({ kind: first.val, pos: first.pos });
            continue;
          default:
            this.fail(first, `{{${first.val}}} is not supported`);
        }
      }
      const pipe = this.pipeline('command', true);
      list.push({ kind: 'action', pipe, pos: pipe.pos });
    }
  }

  private expectRight(context: string): void {
    const t = this.next();
    if (t.type !== 'right') this.unexpected(t, context);
  }

  /**
   * `{{template "name" pipeline}}`: docker's --format cannot define templates, so running one
   * always fails as Go fails on an undefined name; its pipeline is parsed (and checked) only.
   */
  private templateCall(): Node {
    this.next();
    const name = this.next();
    if (name.type !== 'string') this.unexpected(name, 'template clause');
    let text = `{{template ${name.text}}}`;
    if (this.peek().type === 'right') this.next();
    else text = `{{template ${name.text} ${pipeString(this.pipeline('template clause', false))}}}`;
    return { kind: 'template', name: name.val, pos: name.pos, text };
  }

  private control(word: 'if' | 'with' | 'range', kw: Token): Node {
    const saved = this.vars.length;
    const pipe = this.pipeline(word, word === 'range');
    if (pipe.cmds.length === 0) this.fail(kw, `missing value for ${word}`);
    if (word === 'range') this.rangeDepth++;
    const [list, end] = this.itemList();
    if (word === 'range') this.rangeDepth--;
    let elseList: Node[] | null = null;
    if (!end) this.fail(this.peek(), 'unexpected EOF');
    if (end.word === 'else') {
      const nxt = this.peek();
      if (word === 'if' && nxt.type === 'keyword' && nxt.val === 'if') {
        // {{else if …}}: an else branch holding one nested if that shares our {{end}}.
        this.next();
        elseList = [this.control('if', nxt)];
      } else {
        // Go (as built into docker 20.10) has no {{else with}} and {{else if}} only inside if.
        if (nxt.type === 'keyword' && nxt.val === 'if') this.fail(nxt, 'unexpected <if> in input');
        if (nxt.type === 'keyword') this.fail(nxt, `unexpected <${nxt.val}> in else`);
        this.expectRight('else');
        const [l2, end2] = this.itemList();
        if (!end2) this.fail(this.peek(), 'unexpected EOF');
        if (end2.word !== 'end') this.fail(end2.tok, 'expected end; found {{else}}');
        this.expectRight('end');
        elseList = l2;
      }
    } else {
      this.expectRight('end');
    }
    this.vars.length = saved;
    return { kind: word, pipe, list, elseList, pos: kw.pos };
  }

  /** A pipeline up to `}}` (or `)` when nested), with an optional `$x :=` / `$x =` head. */
  private pipeline(context: string, allowTwoVars: boolean, nested = false): Pipe {
    const start = this.peek();
    const decl: string[] = [];
    let isAssign = false;
    // Look ahead for `$x :=`, `$x =`, `$i, $v :=`.
    const t0 = this.toks[this.i];
    const t1 = this.toks[this.i + 1];
    const t2 = this.toks[this.i + 2];
    const t3 = this.toks[this.i + 3];
    if (t0.type === 'variable' && (t1.type === 'declare' || t1.type === 'assign')) {
      decl.push(t0.val);
      isAssign = t1.type === 'assign';
      this.i += 2;
    } else if (t0.type === 'variable' && t1.type === 'comma' && t2.type === 'variable' && t3.type === 'declare') {
      if (!allowTwoVars) this.fail(t1, `too many declarations in ${context}`);
      decl.push(t0.val, t2.val);
      this.i += 4;
    }
    if (isAssign) {
      if (!this.vars.includes(decl[0])) this.fail(t0, `undefined variable "${decl[0]}"`);
    } else {
      this.vars.push(...decl);
    }
    const cmds: Command[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type === (nested ? 'rparen' : 'right')) {
        this.next();
        break;
      }
      if (t.type === 'eof') this.fail(t, nested ? 'unclosed left paren' : 'unclosed action');
      cmds.push(this.command(nested));
      const sep = this.peek();
      if (sep.type === 'pipe') {
        this.next();
        const after = this.peek();
        if (after.type === 'right' || after.type === 'rparen' || after.type === 'eof') this.fail(after, 'missing command');
        continue;
      }
    }
    if (cmds.length === 0 && context === 'command') this.fail(start, decl.length ? `missing value for ${context}` : 'missing value for command');
    for (let k = 1; k < cmds.length; k++) {
      const f = cmds[k].args[0];
      if (['string', 'number', 'bool', 'nil', 'dot'].includes(f.kind)) this.fail(start, `non executable command in pipeline stage ${k + 1}`);
    }
    return { decl, isAssign, cmds, pos: start.pos };
  }

  private command(nested: boolean): Command {
    const args: Arg[] = [];
    const pos = this.peek().pos;
    for (;;) {
      const t = this.peek();
      if (t.type === 'pipe' || t.type === 'right' || t.type === 'rparen' || t.type === 'eof') break;
      args.push(this.operand());
    }
    if (args.length === 0) this.fail(this.peek(), 'empty command');
    const stop = this.peek();
    if (stop.type === 'rparen' && !nested) this.unexpected(stop, 'command');
    if (stop.type === 'right' && nested) this.fail(stop, 'unclosed left paren');
    return { args, pos };
  }

  private operand(): Arg {
    const t = this.next();
    let node: Arg;
    switch (t.type) {
      case 'field':
        node = { kind: 'field', names: [t.val], pos: t.pos };
        break;
      case 'dot':
        node = { kind: 'dot', pos: t.pos };
        break;
      case 'variable':
        if (!this.vars.includes(t.val)) this.fail(t, `undefined variable "${t.val}"`);
        node = { kind: 'variable', name: t.val, names: [], pos: t.pos };
        break;
      case 'identifier':
        if (!this.funcs.has(t.val)) this.fail(t, `function "${t.val}" not defined`);
        node = { kind: 'identifier', name: t.val, pos: t.pos };
        break;
      case 'string':
        node = { kind: 'string', text: t.text, val: t.val, pos: t.pos };
        break;
      case 'char':
        node = { kind: 'number', text: t.text, val: Number(t.val), isInt: true, isChar: true, pos: t.pos };
        break;
      case 'number': {
        const n = parseNumber(t);
        node = { kind: 'number', text: t.text, val: n.val, isInt: n.isInt, isChar: false, pos: t.pos };
        break;
      }
      case 'bool':
        node = { kind: 'bool', val: t.val === 'true', pos: t.pos };
        break;
      case 'nil':
        node = { kind: 'nil', pos: t.pos };
        break;
      case 'lparen': {
        const pipe = this.pipeline('parenthesized pipeline', false, true);
        node = { kind: 'pipe', pipe, pos: t.pos };
        break;
      }
      default:
        this.unexpected(t, 'operand');
    }
    // Fields glued to the operand: .A.B, $x.A, (pipe).A
    const names: string[] = [];
    let chainPos = -1;
    while (this.peek().type === 'field' && this.peek().glued) {
      const f = this.next();
      if (chainPos < 0) chainPos = f.pos;
      names.push(f.val);
    }
    if (names.length === 0) return node;
    if (node.kind === 'field') return { kind: 'field', names: [...node.names, ...names], pos: chainPos };
    if (node.kind === 'variable') return { kind: 'variable', name: node.name, names, pos: chainPos };
    if (node.kind === 'pipe' || node.kind === 'identifier') return { kind: 'chain', node, names, pos: chainPos };
    this.fail(t, `unexpected . after term ${JSON.stringify(argString(node))}`);
  }
}

/** Parse a template; throws TemplateSyntaxError with Go's message on malformed input. */
export function parse(src: string, funcs: ReadonlySet<string>): Node[] {
  return new Parser(lex(src), funcs).parseTemplate();
}
