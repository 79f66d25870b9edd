// The Go template engine and docker's --format semantics (src/cli/template), against outputs
// recorded from docker 20.10's client (the oracle) with the same data: `docker inspect -f T c1`
// for a container created from corpus/busybox with labels a=1 and b=2, and `images`, `ps -a`,
// `history`, `system df` with --format, whose rows are docker's own `{{json .}}` of each row.
// The expected texts, error messages and exit codes below are docker's, byte for byte.
// test/cli/template-docker.test.ts repeats the comparison against a live dockerd.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StrataError } from '../../src/store/errors.js';
import {
  compile,
  execute,
  formatOne,
  formatRows,
  goStruct,
  HISTORY_TABLE,
  IMAGES_TABLE,
  PS_TABLE,
  SYSTEM_DF_TABLE,
  TemplateExecError,
  TemplateSyntaxError,
  type FormatCommand,
} from '../../src/cli/template/index.js';
import { tabwrite } from '../../src/cli/template/tabwriter.js';

type Expected = string | { error: string; code: number };
type InspectCase = [template: string, expected: Expected];
type ListCase = [command: FormatCommand, format: string, expected: Expected];

const CONTAINER_JSON = {
  "Id": "985800ec38c9745cd6e30ed58ebeebe3cd784737186994467567f500e6ddb7cf",
  "Created": "2026-12-01T22:44:20.794599509Z",
  "Path": "sh",
  "Args": [],
  "State": {
    "Status": "created",
    "Running": false,
    "Paused": false,
    "Restarting": false,
    "OOMKilled": false,
    "Dead": false,
    "Pid": 0,
    "ExitCode": 0,
    "Error": "",
    "StartedAt": "0001-01-01T00:00:00Z",
    "FinishedAt": "0001-01-01T00:00:00Z",
    "Health": null
  },
  "Image": "sha256:eb18a39c8c8bbd7281a404839f681e7a77802d7be313f036020339eb118c179c",
  "Name": "/c1",
  "RestartCount": 0,
  "Config": {
    "Hostname": "985800ec38c9",
    "Domainname": "",
    "User": "",
    "AttachStdin": false,
    "AttachStdout": true,
    "AttachStderr": true,
    "Tty": false,
    "OpenStdin": false,
    "StdinOnce": false,
    "Env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ],
    "Cmd": [
      "sh"
    ],
    "Image": "corpus/busybox:latest",
    "Volumes": null,
    "WorkingDir": "",
    "Entrypoint": null,
    "OnBuild": null,
    "Labels": {
      "a": "1",
      "b": "2"
    }
  }
};

const INSPECT_CASES: InspectCase[] = [
  ["{{.Name}}", "/c1\n"],
  ["{{.Id}}", "985800ec38c9745cd6e30ed58ebeebe3cd784737186994467567f500e6ddb7cf\n"],
  ["{{.Config.Image}} {{.Config.Cmd}} {{.Config.Env}}", "corpus/busybox:latest [sh] [PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin]\n"],
  ["{{.Path}}|{{.Args}}|{{len .Args}}|{{.RestartCount}}", "sh|[]|0|0\n"],
  ["{{.State.Status}} {{.State.Running}} {{.State.Pid}}", "created false 0\n"],
  ["{{.Config.Labels}}", "map[a:1 b:2]\n"],
  ["{{.Config.Labels.a}}-{{.Config.Labels.zzz}}-{{index .Config.Labels \"b\"}}-{{index .Config.Labels \"zzz\"}}.", "1-<no value>-2-.\n"],
  ["{{json .Config.Labels}}", "{\"a\":\"1\",\"b\":\"2\"}\n"],
  ["{{json .Config.Cmd}} {{json .Args}} {{json .Name}} {{json 1}} {{json \"a<b>&\"}} {{json true}}", "[\"sh\"] [] \"/c1\" 1 \"a<b>&\" true\n"],
  ["{{range .Config.Env}}[{{.}}]{{end}}", "[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin]\n"],
  ["{{range $i, $e := .Config.Cmd}}{{$i}}={{$e}} {{end}}", "0=sh \n"],
  ["{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}},{{end}}", "a:1,b:2,\n"],
  ["{{range .Args}}x{{else}}empty{{end}}", "empty\n"],
  ["{{range $v := .Config.Labels}}{{$v}}{{end}}", "12\n"],
  ["{{if .State.Running}}up{{else if eq .State.Status \"created\"}}made{{else}}other{{end}}", "made\n"],
  ["{{if .Args}}a{{else}}no args{{end}} {{if .Config.Labels}}labels{{end}} {{if \"\"}}x{{else}}y{{end}} {{if 0}}x{{else}}z{{end}}", "no args labels y z\n"],
  ["{{with .Config}}{{.Image}}/{{$.Name}}{{end}} {{with .Args}}x{{else}}none{{end}}", "corpus/busybox:latest//c1 none\n"],
  ["{{$n := .Name}}{{$n}} {{$n = \"re\"}}{{$n}}", "/c1 re\n"],
  ["{{- /* comment */ -}} {{.Name}}   {{- \" trimmed \" -}}   !", "/c1 trimmed !\n"],
  ["  {{- 3 -}}  ", "3\n"],
  ["{{printf \"%s|%5s|%-5s|%q\" \"ab\" \"ab\" \"ab\" \"a\\\"b\"}}", "ab|   ab|ab   |\"a\\\"b\"\n"],
  ["{{printf \"%d|%5d|%-5d|%05d|%x|%X|%o|%b\" 42 42 42 42 255 255 8 5}}", "42|   42|42   |00042|ff|FF|10|101\n"],
  ["{{printf \"%v|%t|%%|%v|%v|%v\" \"s\" true 1.5 .Args .Config.Labels}}", "s|true|%|1.5|[]|map[a:1 b:2]\n"],
  ["{{printf \"%x|%q|%v\" \"hi\" 42 nil}}", "6869|'*'|<nil>\n"],
  ["{{printf \"%s\" 42}} {{printf \"%d\" \"x\"}} {{printf \"%d\"}} {{printf \"%s %s\" \"a\"}} {{printf \"a\" 1}}", "%!s(int=42) %!d(string=x) %!d(MISSING) a %!s(MISSING) a%!(EXTRA int=1)\n"],
  ["{{printf \"%.2f|%8.3f|%e|%g\" 3.14159 2.5 1234.5 0.000012}}", "3.14|   2.500|1.234500e+03|1.2e-05\n"],
  ["{{printf \"%v %v %v\" 1e21 1e20 0.1}}", "1e+21 1e+20 0.1\n"],
  ["{{print \"a\" \"b\" 1 2 \"c\"}} {{print 1 2}} {{println \"x\" 1}}", "ab1 2c 1 2 x 1\n\n"],
  ["{{upper \"abc\"}} {{lower \"AbC\"}} {{title \"hello wOrld foo-bar\"}}", "ABC abc Hello WOrld Foo-Bar\n"],
  ["{{join .Config.Env \",\"}} {{split \"a,b,,c\" \",\"}} {{len (split \"a,b\" \",\")}} {{index (split \"a:b\" \":\") 1}}", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin [a b  c] 2 b\n"],
  ["{{truncate \"abcdef\" 3}}|{{truncate \"ab\" 3}}|{{truncate \"abc\" 3}}|{{pad \"ab\" 2 3}}|{{pad \"\" 2 3}}|", "abc|ab|abc|  ab   ||\n"],
  ["{{eq 1 1}} {{eq \"a\" \"b\"}} {{eq 1 2 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1 2}}", "true false true true true true true false\n"],
  ["{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" \"x\"}} {{or 0 \"\"}} {{not 0}} {{not \"a\"}}", "0 2 x  true false\n"],
  ["{{.Name | printf \"%s!\"}} {{\"x\" | upper | printf \"%s-%s\" \"y\"}}", "/c1! y-X\n"],
  ["{{len .Name}} {{len .Config.Labels}} {{len \"héllo\"}}", "3 2 6\n"],
  ["{{index .Config.Cmd 0}} {{index .Config.Env 0 | lower}}", "sh path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"],
  ["{{eq .State.Pid 0}} {{eq .State.Running false}}", "true true\n"],
  ["{{json .State.Health}} {{.State.Health}} {{printf \"%v\" .State.Health}}", "null <nil> <nil>\n"],
  ["{{true}} {{false}} {{nil}}", { error: "template parsing error: template: :1:21: executing \"\" at <nil>: nil is not a command", code: 1 }],
  ["{{\"a\\tb\\n\"}}|{{`raw\\n`}}|{{'a'}}|{{0x1F}}|{{-5}}|{{1.50}}", "a\tb\n|raw\\n|97|31|-5|1.5\n"],
  ["{{.Config.Labels.zzz.yyy}}", "<no value>\n"],
  ["{{.NoSuchField}}", { error: "template parsing error: template: :1:2: executing \"\" at <.NoSuchField>: map has no entry for key \"NoSuchField\"", code: 1 }],
  ["{{.Config.NoSuch}}", { error: "template parsing error: template: :1:9: executing \"\" at <.Config.NoSuch>: map has no entry for key \"NoSuch\"", code: 1 }],
  ["{{index .Config.Cmd 5}}", { error: "template parsing error: template: :1:2: executing \"\" at <index .Config.Cmd 5>: error calling index: index out of range: 5", code: 1 }],
  ["{{index .Name 0}}", "47\n"],
  ["{{len 3}}", { error: "template parsing error: template: :1:2: executing \"\" at <len 3>: error calling len: len of type int", code: 1 }],
  ["{{range 5}}{{end}}", { error: "template parsing error: template: :1:8: executing \"\" at <5>: range can't iterate over 5", code: 1 }],
  ["{{eq .Config.Cmd \"x\"}}", { error: "template parsing error: template: :1:2: executing \"\" at <eq .Config.Cmd \"x\">: error calling eq: incompatible types for comparison", code: 1 }],
  ["{{lt 1 \"a\"}}", { error: "template parsing error: template: :1:2: executing \"\" at <lt 1 \"a\">: error calling lt: incompatible types for comparison", code: 1 }],
  ["{{.Name.Foo}}", { error: "template parsing error: template: :1:7: executing \"\" at <.Name.Foo>: can't evaluate field Foo in type interface {}", code: 1 }],
  ["{{template \"x\"}}", { error: "template parsing error: template: :1:11: executing \"\" at <{{template \"x\"}}>: template \"x\" not defined", code: 1 }],
  ["{{.Name", { error: "template parsing error: template: :1: unclosed action", code: 64 }],
  ["{{if}}{{end}}", { error: "template parsing error: template: :1: missing value for if", code: 64 }],
  ["{{end}}", { error: "template parsing error: template: :1: unexpected {{end}}", code: 64 }],
  ["{{if 1}}", { error: "template parsing error: template: :1: unexpected EOF", code: 64 }],
  ["{{range .Args}}", { error: "template parsing error: template: :1: unexpected EOF", code: 64 }],
  ["{{nofunc 1}}", { error: "template parsing error: template: :1: function \"nofunc\" not defined", code: 64 }],
  ["{{$x}}", { error: "template parsing error: template: :1: undefined variable \"$x\"", code: 64 }],
  ["{{.Name}} {{else}}", { error: "template parsing error: template: :1: unexpected {{else}}", code: 64 }],
  ["{{\"unterminated}}", { error: "template parsing error: template: :1: unterminated quoted string", code: 64 }],
  ["{{printf}}", { error: "template parsing error: template: :1:2: executing \"\" at <printf>: wrong number of args for printf: want at least 1 got 0", code: 1 }],
  ["{{upper 1}}", { error: "template parsing error: template: :1:8: executing \"\" at <1>: expected string; found 1", code: 1 }],
  ["{{3 | printf \"%d %d\" 4}}", "4 3\n"],
  ["{{json .Config}}", "{\"Hostname\":\"985800ec38c9\",\"Domainname\":\"\",\"User\":\"\",\"AttachStdin\":false,\"AttachStdout\":true,\"AttachStderr\":true,\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"sh\"],\"Image\":\"corpus/busybox:latest\",\"Volumes\":null,\"WorkingDir\":\"\",\"Entrypoint\":null,\"OnBuild\":null,\"Labels\":{\"a\":\"1\",\"b\":\"2\"}}\n"],
  ["line1\n{{.Foo}}", { error: "template parsing error: template: :2:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\"", code: 1 }],
  ["a\n  b {{.Config.Nope}}", { error: "template parsing error: template: :2:13: executing \"\" at <.Config.Nope>: map has no entry for key \"Nope\"", code: 1 }],
  ["{{range .Config.Env}}{{$.Name}}:{{.}}{{end}}", "/c1:PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"],
  ["{{range $i, $e := .Config.Cmd}}{{if $i}},{{end}}{{$e}}{{end}}", "sh\n"],
  ["{{range .Config.Labels}}{{.}}{{break}}{{end}}|{{range $k, $v := .Config.Labels}}{{if eq $k \"a\"}}{{continue}}{{end}}{{$k}}{{end}}", "1|b\n"],
  ["{{with .State}}{{.Status}}{{else}}none{{end}} {{with .Args}}{{.}}{{else}}no-args{{end}}", "created no-args\n"],
  ["{{with $s := .State.Status}}{{$s}}{{end}}", "created\n"],
  ["{{if and .Config .Config.Cmd}}cmd={{index .Config.Cmd 0}}{{end}}", "cmd=sh\n"],
  ["{{if or .Args .Config.Entrypoint}}x{{else}}neither{{end}}", "neither\n"],
  ["{{if not .State.Running}}stopped{{end}}", "stopped\n"],
  ["{{len .Config.Env}} {{len .Args}} {{len .Name | printf \"%03d\"}}", "1 0 003\n"],
  ["{{printf \"%-10s|%10s|\" .Name .Path}}", "/c1       |        sh|\n"],
  ["{{printf \"%v\" .Config.Cmd}} {{printf \"%q\" .Config.Cmd}} {{printf \"%s\" .Config.Labels}}", "[sh] [\"sh\"] map[a:1 b:2]\n"],
  ["{{print .Config.Cmd .Args}}", "[sh] []\n"],
  ["{{json .Config.Entrypoint}} {{json .Config.Env}} {{json .RestartCount}}", "null [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"] 0\n"],
  ["{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}\n{{end}}", "a=1\nb=2\n\n"],
  ["{{/* a comment */}}x{{/* another */ -}}   y", "xy\n"],
  ["x {{- /* trimmed both sides */ -}} y", "xy\n"],
  ["{{\"a\"}}{{`b`}}{{'c'}}{{1}}{{-1}}{{0.5}}{{1e3}}{{0x10}}{{true}}", "ab991-10.5100016true\n"],
  ["{{$a := 1}}{{$b := \"s\"}}{{$a}}{{$b}}{{$a = 2}}{{$a}}", "1s2\n"],
  ["{{if eq .State.Status \"created\" \"running\"}}known{{end}}", "known\n"],
  ["{{ne .Name \"/c1\"}} {{lt .RestartCount 1}} {{ge .RestartCount 0}} {{gt (len .Name) 2}}", "false true true true\n"],
  ["{{index .Config.Labels \"a\" | printf \"<%s>\"}}", "<1>\n"],
  ["{{split .Config.Image \":\"}} {{index (split .Config.Image \":\") 0}}", "[corpus/busybox latest] corpus/busybox\n"],
  ["{{upper .State.Status}} {{title .State.Status}} {{lower \"MiXeD\"}}", "CREATED Created mixed\n"],
  ["{{join .Config.Cmd \" \"}}|{{join .Args \",\"}}|", "sh||\n"],
  ["{{pad .Name 3 0}}|{{truncate .Id 12}}", "   /c1|985800ec38c9\n"],
  ["{{.State.Pid | printf \"%d\"}} {{printf \"%x\" .State.Pid}} {{printf \"%5.1f%%\" 12.345}}", "0 0  12.3%\n"],
  ["{{range .Config.Env}}", { error: "template parsing error: template: :1: unexpected EOF", code: 64 }],
  ["{{else}}", { error: "template parsing error: template: :1: unexpected {{else}}", code: 64 }],
  ["{{range}}{{end}}", { error: "template parsing error: template: :1: missing value for range", code: 64 }],
  ["{{with}}{{end}}", { error: "template parsing error: template: :1: missing value for with", code: 64 }],
  ["{{.Name | 3}}", { error: "template parsing error: template: :1: non executable command in pipeline stage 2", code: 64 }],
  ["{{(.Name}}", { error: "template parsing error: template: :1: unclosed left paren", code: 64 }],
  ["{{.Name)}}", { error: "template parsing error: template: :1: unexpected \")\" in command", code: 64 }],
  ["{{$x := 1}}{{$x.Foo}}", { error: "template parsing error: template: :1:15: executing \"\" at <$x.Foo>: can't evaluate field Foo in type int", code: 1 }],
  ["{{if .Name}}a{{else}}b{{else}}c{{end}}", { error: "template parsing error: template: :1: expected end; found {{else}}", code: 64 }],
  ["{{printf \"%s\" (index .Config.Cmd 9)}}", { error: "template parsing error: template: :1:15: executing \"\" at <index .Config.Cmd 9>: error calling index: index out of range: 9", code: 1 }],
  ["{{len .State.Nope}}", { error: "template parsing error: template: :1:12: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\"", code: 1 }],
  ["{{index .Config.Cmd \"a\"}}", { error: "template parsing error: template: :1:2: executing \"\" at <index .Config.Cmd \"a\">: error calling index: cannot index slice/array with type string", code: 1 }],
  ["{{index 3 0}}", { error: "template parsing error: template: :1:2: executing \"\" at <index 3 0>: error calling index: can't index item of type int", code: 1 }],
  ["{{truncate .Name \"x\"}}", { error: "template parsing error: template: :1:17: executing \"\" at <\"x\">: expected integer; found \"x\"", code: 1 }],
  ["{{pad .Name 1}}", { error: "template parsing error: template: :1:2: executing \"\" at <pad>: wrong number of args for pad: want 3 got 2", code: 1 }],
  ["{{split .Args \",\"}}", { error: "template parsing error: template: :1:8: executing \"\" at <.Args>: wrong type for value; expected string; got []interface {}", code: 1 }],
  ["{{eq .Config.Labels .Config.Labels}}", { error: "template parsing error: template: :1:2: executing \"\" at <eq .Config.Labels .Config.Labels>: error calling eq: non-comparable type map[a:1 b:2]: map[string]interface {}", code: 1 }],
  ["{{lt true false}}", { error: "template parsing error: template: :1:2: executing \"\" at <lt true false>: error calling lt: invalid type for comparison", code: 1 }],
  ["{{and}}", { error: "template parsing error: template: :1:2: executing \"\" at <and>: wrong number of args for and: want at least 1 got 0", code: 1 }],
  ["{{.Config.Cmd.Foo}}", { error: "template parsing error: template: :1:9: executing \"\" at <.Config.Cmd.Foo>: can't evaluate field Foo in type interface {}", code: 1 }],
  ["{{.State.Status.Foo}}", { error: "template parsing error: template: :1:8: executing \"\" at <.State.Status.Foo>: can't evaluate field Foo in type interface {}", code: 1 }],
  ["{{with .Args}}x{{else if .Name}}named{{end}}", { error: "template parsing error: template: :1: unexpected <if> in input", code: 64 }],
  ["{{range .Args}}x{{else if .Name}}n{{else}}z{{end}}", { error: "template parsing error: template: :1: unexpected <if> in input", code: 64 }],
  ["{{with .Args}}{{else with .Name}}{{.}}{{end}}", { error: "template parsing error: template: :1: unexpected <with> in else", code: 64 }],
  ["{{if .Args}}{{else}}{{else}}{{end}}", { error: "template parsing error: template: :1: expected end; found {{else}}", code: 64 }],
  ["{{range .Args}}{{else}}e{{break}}{{end}}", { error: "template parsing error: template: :1: {{break}} outside {{range}}", code: 64 }],
  ["{{break}}", { error: "template parsing error: template: :1: {{break}} outside {{range}}", code: 64 }],
  ["{{if 1}}{{continue}}{{end}}", { error: "template parsing error: template: :1: {{continue}} outside {{range}}", code: 64 }],
  ["{{range .Config.Env}}{{if 1}}{{break}}{{end}}{{end}}ok", "ok\n"],
  ["{{if .Args}}a{{else if .Nope}}b{{end}}", { error: "template parsing error: template: :1:23: executing \"\" at <.Nope>: map has no entry for key \"Nope\"", code: 1 }],
  ["{{if eq .Name \"/x\"}}a{{else if eq .Name \"/c1\"}}b{{else if true}}c{{else}}d{{end}}", "b\n"],
  ["{{range $i, $e := .Config.Env}}{{$i}}{{end}}{{$e}}", { error: "template parsing error: template: :1: undefined variable \"$e\"", code: 64 }],
  ["{{with $x := .Name}}{{$x}}{{end}}{{$x}}", { error: "template parsing error: template: :1: undefined variable \"$x\"", code: 64 }],
  ["{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{end}}{{$x}}", "2\n"],
  ["{{$x := 1}}{{range .Config.Env}}{{$x = 5}}{{end}}{{$x}}", "5\n"],
];

const LIST_ROWS = {
  "images": [
    {
      "Containers": "N/A",
      "CreatedAt": "2026-11-28 03:27:54 +0000 UTC",
      "CreatedSince": "3 days ago",
      "Digest": "<none>",
      "ID": "218bd654ad65",
      "Repository": "corpus/app",
      "SharedSize": "N/A",
      "Size": "17.8MB",
      "Tag": "latest",
      "UniqueSize": "N/A",
      "VirtualSize": "17.77MB"
    },
    {
      "Containers": "N/A",
      "CreatedAt": "2026-11-28 03:26:25 +0000 UTC",
      "CreatedSince": "3 days ago",
      "Digest": "<none>",
      "ID": "eb18a39c8c8b",
      "Repository": "corpus/busybox",
      "SharedSize": "N/A",
      "Size": "2.04MB",
      "Tag": "latest",
      "UniqueSize": "N/A",
      "VirtualSize": "2.043MB"
    }
  ],
  "ps": [
    {
      "Command": "\"sh\"",
      "CreatedAt": "2026-12-01 22:44:20 +0000 UTC",
      "ID": "8207dbad9ee4",
      "Image": "corpus/app:latest",
      "Labels": "",
      "LocalVolumes": "0",
      "Mounts": "",
      "Names": "c2",
      "Networks": "bridge",
      "Ports": "",
      "RunningFor": "50 minutes ago",
      "Size": "0B (virtual 17.8MB)",
      "State": "created",
      "Status": "Created"
    },
    {
      "Command": "\"sh\"",
      "CreatedAt": "2026-12-01 22:44:20 +0000 UTC",
      "ID": "985800ec38c9",
      "Image": "corpus/busybox:latest",
      "Labels": "a=1,b=2",
      "LocalVolumes": "0",
      "Mounts": "",
      "Names": "c1",
      "Networks": "bridge",
      "Ports": "",
      "RunningFor": "50 minutes ago",
      "Size": "0B (virtual 2.04MB)",
      "State": "created",
      "Status": "Created"
    }
  ],
  "history": [
    {
      "Comment": "busybox-static 1:1.35.0-4+deb12u1+b1 rootfs (dpkg -x + busybox --install -s)",
      "CreatedAt": "2026-11-28T03:26:25Z",
      "CreatedBy": "",
      "CreatedSince": "3 days ago",
      "ID": "eb18a39c8c8b",
      "Size": "2.04MB"
    }
  ],
  "system df": [
    {
      "Active": "2",
      "Reclaimable": "2.043MB (11%)",
      "Size": "17.77MB",
      "TotalCount": "2",
      "Type": "Images"
    },
    {
      "Active": "0",
      "Reclaimable": "0B",
      "Size": "0B",
      "TotalCount": "2",
      "Type": "Containers"
    },
    {
      "Active": "0",
      "Reclaimable": "0B",
      "Size": "0B",
      "TotalCount": "0",
      "Type": "Local Volumes"
    },
    {
      "Active": "0",
      "Reclaimable": "0B",
      "Size": "0B",
      "TotalCount": "0",
      "Type": "Build Cache"
    }
  ]
};

const LIST_CASES: ListCase[] = [
  ["images", "", "REPOSITORY       TAG       IMAGE ID       CREATED      SIZE\ncorpus/app       latest    218bd654ad65   3 days ago   17.8MB\ncorpus/busybox   latest    eb18a39c8c8b   3 days ago   2.04MB\n"],
  ["images", "table", "REPOSITORY       TAG       IMAGE ID       CREATED      SIZE\ncorpus/app       latest    218bd654ad65   3 days ago   17.8MB\ncorpus/busybox   latest    eb18a39c8c8b   3 days ago   2.04MB\n"],
  ["images", "json", "json\njson\n"],
  ["images", "{{json .}}", "{\"Containers\":\"N/A\",\"CreatedAt\":\"2026-11-28 03:27:54 +0000 UTC\",\"CreatedSince\":\"3 days ago\",\"Digest\":\"\\u003cnone\\u003e\",\"ID\":\"218bd654ad65\",\"Repository\":\"corpus/app\",\"SharedSize\":\"N/A\",\"Size\":\"17.8MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\",\"VirtualSize\":\"17.77MB\"}\n{\"Containers\":\"N/A\",\"CreatedAt\":\"2026-11-28 03:26:25 +0000 UTC\",\"CreatedSince\":\"3 days ago\",\"Digest\":\"\\u003cnone\\u003e\",\"ID\":\"eb18a39c8c8b\",\"Repository\":\"corpus/busybox\",\"SharedSize\":\"N/A\",\"Size\":\"2.04MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\",\"VirtualSize\":\"2.043MB\"}\n"],
  ["images", "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}", "REPOSITORY       TAG       IMAGE ID\ncorpus/app       latest    218bd654ad65\ncorpus/busybox   latest    eb18a39c8c8b\n"],
  ["images", "{{.Repository}}:{{.Tag}}", "corpus/app:latest\ncorpus/busybox:latest\n"],
  ["images", "table {{.ID}}\\t{{printf \"%s!\" .Tag}}\\t{{.Size | upper}}\\t{{json .Repository}}\\t{{.Digest}}x", "IMAGE ID       TAG!      SIZE      REPOSITORY         DIGESTx\n218bd654ad65   latest!   17.8MB    \"corpus/app\"       <none>x\neb18a39c8c8b   latest!   2.04MB    \"corpus/busybox\"   <none>x\n"],
  ["images", "table {{.ID}} {{.Tag}}\\t{{.Foo}}", { error: "template parsing error: template: :1:19: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.imageContext", code: 1 }],
  ["images", "{{.Repository", { error: "template parsing error: template: :1: unclosed action", code: 1 }],
  ["images", "{{nofunc .X}}", { error: "template parsing error: template: :1: function \"nofunc\" not defined", code: 1 }],
  ["images", "tablex {{.ID}}", "x IMAGE ID\nx 218bd654ad65\nx eb18a39c8c8b\n"],
  ["images", "table{{.ID}}", "IMAGE ID\n218bd654ad65\neb18a39c8c8b\n"],
  ["images", "TABLE {{.ID}}", "TABLE 218bd654ad65\nTABLE eb18a39c8c8b\n"],
  ["images", "  {{.ID}}  ", "218bd654ad65\neb18a39c8c8b\n"],
  ["images", "table   {{.ID}}|{{.Tag}}   ", "IMAGE ID|TAG\n218bd654ad65|latest\neb18a39c8c8b|latest\n"],
  ["images", "{{.ID}}\\t{{.Tag}}\\n--", "218bd654ad65\tlatest\n--\neb18a39c8c8b\tlatest\n--\n"],
  ["images", "table {{.ID}}\\t{{.Repository | len}}\\t{{.Tag}}", "IMAGE ID       10        TAG\n218bd654ad65   10        latest\neb18a39c8c8b   14        latest\n"],
  ["images", "table {{.ID}}\\t{{index .Tag 0}}\\t{{.Tag}}", "IMAGE ID       84        TAG\n218bd654ad65   108       latest\neb18a39c8c8b   108       latest\n"],
  ["images", "table {{if .ID}}yes{{end}}\\t{{.Tag}}", "yes       TAG\nyes       latest\nyes       latest\n"],
  ["images", "table {{.ID}}\\t{{json .}}", "IMAGE ID       \n218bd654ad65   {\"Containers\":\"N/A\",\"CreatedAt\":\"2026-11-28 03:27:54 +0000 UTC\",\"CreatedSince\":\"3 days ago\",\"Digest\":\"\\u003cnone\\u003e\",\"ID\":\"218bd654ad65\",\"Repository\":\"corpus/app\",\"SharedSize\":\"N/A\",\"Size\":\"17.8MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\",\"VirtualSize\":\"17.77MB\"}\neb18a39c8c8b   {\"Containers\":\"N/A\",\"CreatedAt\":\"2026-11-28 03:26:25 +0000 UTC\",\"CreatedSince\":\"3 days ago\",\"Digest\":\"\\u003cnone\\u003e\",\"ID\":\"eb18a39c8c8b\",\"Repository\":\"corpus/busybox\",\"SharedSize\":\"N/A\",\"Size\":\"2.04MB\",\"Tag\":\"latest\",\"UniqueSize\":\"N/A\",\"VirtualSize\":\"2.043MB\"}\n"],
  ["images", "table {{.ID}}\\t\\t{{.Tag}}\\t", "IMAGE ID                 TAG       \n218bd654ad65             latest    \neb18a39c8c8b             latest    \n"],
  ["images", "table {{range $i, $e := split .Repository \"/\"}}{{$e}}\\t{{end}}", "\ncorpus    app       \ncorpus    busybox   \n"],
  ["images", "{{.ID}}{{println}}", "218bd654ad65\n\neb18a39c8c8b\n\n"],
  ["images", "table {{.Repository}}\\t{{.Tag}}{{println}}\\t{{.ID}}", "REPOSITORY       TAG\n                 IMAGE ID\ncorpus/app       latest\n                 218bd654ad65\ncorpus/busybox   latest\n                 eb18a39c8c8b\n"],
  ["images", "table {{.ID}}\\t{{.Containers}}\\t{{.CreatedAt}}\\t{{.SharedSize}}|{{.UniqueSize}}|{{.VirtualSize}}", "IMAGE ID       CONTAINERS   CREATED AT                      SHARED SIZE|UNIQUE SIZE|SIZE\n218bd654ad65   N/A          2026-11-28 03:27:54 +0000 UTC   N/A|N/A|17.77MB\neb18a39c8c8b   N/A          2026-11-28 03:26:25 +0000 UTC   N/A|N/A|2.043MB\n"],
  ["images", "{{- .Repository -}} {{lower .Tag | title}} {{truncate .ID 4}}{{pad .Tag 1 1}}|", "corpus/appLatest 218b latest |\ncorpus/busyboxLatest eb18 latest |\n"],
  ["images", "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}", "REPOSITORY       TAG       DIGEST    IMAGE ID\ncorpus/app       latest    <none>    218bd654ad65\ncorpus/busybox   latest    <none>    eb18a39c8c8b\n"],
  ["ps", "", "CONTAINER ID   IMAGE                   COMMAND   CREATED          STATUS    PORTS     NAMES\n8207dbad9ee4   corpus/app:latest       \"sh\"      50 minutes ago   Created             c2\n985800ec38c9   corpus/busybox:latest   \"sh\"      50 minutes ago   Created             c1\n"],
  ["ps", "table {{.Names}}\\t{{.Image}}\\t{{.Status}}", "NAMES     IMAGE                   STATUS\nc2        corpus/app:latest       Created\nc1        corpus/busybox:latest   Created\n"],
  ["ps", "{{.Names}} {{.Labels}} {{.Label \"a\"}}", "c2  \nc1 a=1,b=2 1\n"],
  ["ps", "table {{.ID}}\\t{{.Label \"com.x-y_z\"}}\\t{{.Names}}", "CONTAINER ID   x y z     NAMES\n8207dbad9ee4             c2\n985800ec38c9             c1\n"],
  ["ps", "table {{.Label \"a\"}}{{.Names}}", "aNAMES\nc2\n1c1\n"],
  ["ps", "{{json .}}", "{\"Command\":\"\\\"sh\\\"\",\"CreatedAt\":\"2026-12-01 22:44:20 +0000 UTC\",\"ID\":\"8207dbad9ee4\",\"Image\":\"corpus/app:latest\",\"Labels\":\"\",\"LocalVolumes\":\"0\",\"Mounts\":\"\",\"Names\":\"c2\",\"Networks\":\"bridge\",\"Ports\":\"\",\"RunningFor\":\"50 minutes ago\",\"Size\":\"0B (virtual 17.8MB)\",\"State\":\"created\",\"Status\":\"Created\"}\n{\"Command\":\"\\\"sh\\\"\",\"CreatedAt\":\"2026-12-01 22:44:20 +0000 UTC\",\"ID\":\"985800ec38c9\",\"Image\":\"corpus/busybox:latest\",\"Labels\":\"a=1,b=2\",\"LocalVolumes\":\"0\",\"Mounts\":\"\",\"Names\":\"c1\",\"Networks\":\"bridge\",\"Ports\":\"\",\"RunningFor\":\"50 minutes ago\",\"Size\":\"0B (virtual 2.04MB)\",\"State\":\"created\",\"Status\":\"Created\"}\n"],
  ["ps", "{{.Foo}}", { error: "failed to execute template: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.ContainerContext", code: 1 }],
  ["ps", "{{.Foo", { error: "failed to parse template: template: :1: unclosed action", code: 1 }],
  ["ps", "{{.Names}}\\t{{.State}}", "c2\tcreated\nc1\tcreated\n"],
  ["ps", "table {{.Names}}\\t{{.Labels}}\\t{{.Networks}}\\t{{.LocalVolumes}}", "NAMES     LABELS    NETWORKS   LOCAL VOLUMES\nc2                  bridge     0\nc1        a=1,b=2   bridge     0\n"],
  ["ps", "{{if eq .Names \"c1\"}}one{{else}}other{{end}}", "other\none\n"],
  ["history", "", "IMAGE          CREATED      CREATED BY   SIZE      COMMENT\neb18a39c8c8b   3 days ago                2.04MB    busybox-static 1:1.35.0-4+deb12u1+b1 rootfs (dpkg -x + busybox --install -s)\n"],
  ["history", "{{json .}}", "{\"Comment\":\"busybox-static 1:1.35.0-4+deb12u1+b1 rootfs (dpkg -x + busybox --install -s)\",\"CreatedAt\":\"2026-11-28T03:26:25Z\",\"CreatedBy\":\"\",\"CreatedSince\":\"3 days ago\",\"ID\":\"eb18a39c8c8b\",\"Size\":\"2.04MB\"}\n"],
  ["history", "{{.Foo}}", { error: "template parsing error: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *image.historyContext", code: 1 }],
  ["history", "{{.Foo", { error: "template parsing error: template: :1: unclosed action", code: 1 }],
  ["history", "table {{.ID}}\\t{{.CreatedBy}}", "IMAGE          CREATED BY\neb18a39c8c8b   \n"],
  ["history", "table {{.ID}}\\t{{.Comment}}\\t{{.Size}}", "IMAGE          COMMENT                                                                        SIZE\neb18a39c8c8b   busybox-static 1:1.35.0-4+deb12u1+b1 rootfs (dpkg -x + busybox --install -s)   2.04MB\n"],
  ["history", "{{.ID}}: {{.Size}}", "eb18a39c8c8b: 2.04MB\n"],
  ["system df", "", "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          2         2         17.77MB   2.043MB (11%)\nContainers      2         0         0B        0B\nLocal Volumes   0         0         0B        0B\nBuild Cache     0         0         0B        0B\n"],
  ["system df", "{{json .}}", "{\"Active\":\"2\",\"Reclaimable\":\"2.043MB (11%)\",\"Size\":\"17.77MB\",\"TotalCount\":\"2\",\"Type\":\"Images\"}\n{\"Active\":\"0\",\"Reclaimable\":\"0B\",\"Size\":\"0B\",\"TotalCount\":\"2\",\"Type\":\"Containers\"}\n{\"Active\":\"0\",\"Reclaimable\":\"0B\",\"Size\":\"0B\",\"TotalCount\":\"0\",\"Type\":\"Local Volumes\"}\n{\"Active\":\"0\",\"Reclaimable\":\"0B\",\"Size\":\"0B\",\"TotalCount\":\"0\",\"Type\":\"Build Cache\"}\n"],
  ["system df", "table {{.Type}}\\t{{.Size}}", "TYPE            SIZE\nImages          17.77MB\nContainers      0B\nLocal Volumes   0B\nBuild Cache     0B\n"],
  ["system df", "{{.Foo}}", { error: "template parsing error: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.diskUsageImagesContext", code: 1 }],
  ["system df", "{{.Foo", { error: "template parsing error: template: :1: unclosed action", code: 1 }],
  ["system df", "{{if eq .Type \"Containers\"}}{{.Foo}}{{end}}", { error: "template parsing error: template: :1:30: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.diskUsageContainersContext", code: 1 }],
  ["system df", "table {{.Type}}\\t{{.TotalCount}}/{{.Active}}", "TYPE            TOTAL/ACTIVE\nImages          2/2\nContainers      2/0\nLocal Volumes   0/0\nBuild Cache     0/0\n"],
  ["system df", "{{.Type}}={{.Reclaimable}}", "Images=2.043MB (11%)\nContainers=0B\nLocal Volumes=0B\nBuild Cache=0B\n"],
];

/**
 * The container as strata hands it to the engine: JSON objects, except the map-typed fields of
 * docker's structs, which are JS Maps (so a missing label is `<no value>`, not an error), and
 * State.Health, which docker's typed pass sees as a nil pointer.
 */
function container(): unknown {
  const c = structuredClone(CONTAINER_JSON) as unknown as { Config: { Labels: unknown } };
  c.Config.Labels = new Map(Object.entries(CONTAINER_JSON.Config.Labels));
  return c;
}

function expectOutcome(run: () => string, expected: Expected): void {
  if (typeof expected === 'string') {
    assert.equal(run(), expected);
    return;
  }
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof StrataError, `not a StrataError: ${String(err)}`);
    assert.equal(err.message, expected.error);
    assert.equal(err.exitCode, expected.code);
    return true;
  });
}

test('inspect -f: the engine renders what docker 20.10 renders', async (t) => {
  for (const [template, expected] of INSPECT_CASES) {
    await t.test(template, () => expectOutcome(() => formatOne(container(), template, 'inspect'), expected));
  }
});

const TABLES = { images: IMAGES_TABLE, ps: PS_TABLE, history: HISTORY_TABLE, 'system df': SYSTEM_DF_TABLE } as const;

function listRows(command: keyof typeof TABLES): Record<string, unknown>[] {
  const rows = structuredClone(LIST_ROWS[command]) as Record<string, unknown>[];
  if (command === 'ps') {
    // ContainerContext.Label(name): the value of one label, from the row's "a=1,b=2" text.
    for (const row of rows) {
      const labels = new Map(String(row.Labels).split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
      row.Label = (name: string) => labels.get(name) ?? '';
    }
  }
  return rows;
}

test('list --format: rows, tables and errors as docker 20.10 prints them', async (t) => {
  for (const [command, format, expected] of LIST_CASES) {
    const table = TABLES[command as keyof typeof TABLES];
    await t.test(`${command} --format ${JSON.stringify(format)}`, () =>
      expectOutcome(() => formatRows(listRows(command as keyof typeof TABLES), format, { command, ...table }), expected),
    );
  }
});

test('a row is a struct: a field it lacks is an error even where a map would say <no value>', () => {
  const t = compile('{{.Nope}}');
  assert.throws(
    () => execute(t, goStruct('*formatter.imageContext', { ID: 'x' })),
    (e: unknown) => e instanceof TemplateExecError && /can't evaluate field Nope in type \*formatter\.imageContext$/.test(e.message),
  );
  assert.equal(execute(t, { ID: 'x' }), '<no value>');
  assert.equal(execute(compile('{{.Nope}}|{{.Nope.Deeper}}'), new Map([['a', '1']]), { missingKey: 'error' }), '<no value>|<no value>');
});

test('malformed templates fail before anything is printed, with Go parse errors', () => {
  for (const [src, msg] of [
    ['{{.A', 'template: :1: unclosed action'],
    ['x\n{{if .A}}', 'template: :2: unexpected EOF'],
    ['{{"abc}}', 'template: :1: unterminated quoted string'],
    ['{{nope .A}}', 'template: :1: function "nope" not defined'],
  ] as const) {
    assert.throws(() => compile(src), (e: unknown) => e instanceof TemplateSyntaxError && e.message === msg);
  }
  // Nesting deeper than the stack allows is still a one-line parse error, not a crash.
  const deep = '{{' + '('.repeat(100_000) + '1' + ')'.repeat(100_000) + '}}';
  assert.throws(() => compile(deep), (e: unknown) => e instanceof TemplateSyntaxError && e.message === 'template: :1: template nested too deeply');
  // The one-line error and exit code the CLI gets.
  expectOutcome(() => formatRows([{ ID: 'x' }], '{{.ID', { command: 'images', ...IMAGES_TABLE }), {
    error: 'template parsing error: template: :1: unclosed action',
    code: 1,
  });
});

test('tabwriter: columns sized per block, minwidth 10, padding 3, last cell unaligned', () => {
  // Expected texts: docker 20.10's `system df --format 'table …'` with a template printing these
  // cells for the header and each of its four rows.
  assert.equal(
    tabwrite('a\tbb\tc\nlonger-than-ten\tb\tc\nplain\né\tx\t\n\t\ty\n'),
    'a                 bb        c\nlonger-than-ten   b         c\nplain\né         x         \n                    y\n',
  );
  // A line without tabs ends the column block: the lines after it are sized on their own.
  assert.equal(
    tabwrite('aaaaaaaaaaaaaaa\tx\n\nb\tx\tlonger-than-ten\tz\nc\ty\tw\n\t\n'),
    'aaaaaaaaaaaaaaa   x\n\nb         x         longer-than-ten   z\nc         y         w\n          \n',
  );
});

test('printf and print follow Go fmt, including its in-band errors', () => {
  const run = (src: string) => execute(compile(src), null);
  assert.equal(run('{{printf "%6.2f|%-4d|%+d|%x|%X|%o|%b|%c|%U" 3.14159 7 3 255 255 8 5 65 9731}}'), '  3.14|7   |+3|ff|FF|10|101|A|U+2603');
  assert.equal(run('{{printf "%d %s" "x"}}'), '%!d(string=x) %!s(MISSING)');
  assert.equal(run('{{printf "%v %v %T %T" 2.0 1e6 2.0 2}}'), '2 1e+06 float64 int');
  assert.equal(run('{{print 1 2 "a" 3}}|{{println 1 "a"}}'), '1 2a3|1 a\n');
});
