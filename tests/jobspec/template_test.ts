import assert from "node:assert/strict";
import {
  defaultJobSpec,
  type JobSpec,
  MetaUnavailableError,
  parseJobSpec,
  renderTemplate,
  TemplateError,
} from "../../lib/jobspec/mod.ts";

const mock = parseJobSpec(
  Deno.readTextFileSync("/work/shared/fixtures/jobspec/upstream-mock-os.yaml"),
  { lenient: true },
).spec;
const fcos = JSON.parse(Deno.readTextFileSync("/work/shared/fixtures/cosa/meta-fcos.json"));
const r = (t: string, meta?: unknown, spec: JobSpec = mock) =>
  renderTemplate(t, { JobSpec: spec, Meta: meta });

Deno.test("TestJobSpec: JobSpec fields by Go name", () => {
  assert.equal(r("good {{ .JobSpec.Job.BuildName }}"), "good mockOS-99");
  assert.equal(
    r("{{.JobSpec.Recipe.GitRef}} {{.JobSpec.Recipe.GitURL}}"),
    "mock https://github.com/coreos/coreos-assembler",
  );
  assert.equal(r("{{.JobSpec.CloudsCfgs.Aws.Regions}}"), "[us-east-1]");
  assert.equal(r("{{index .JobSpec.CloudsCfgs.Aws.Regions 0}}"), "us-east-1");
  assert.equal(r("{{.JobSpec.CloudsCfgs.Gcp.Project}}"), "openshift-mockOS-devel");
  assert.equal(
    r("{{.JobSpec.Archives.S3.Bucket}}|{{.JobSpec.Job.IsProduction}}|{{.JobSpec.Minio.Bucket}}"),
    "|false|builder",
  );
  assert.equal(r("{{len .JobSpec.Stages}} {{.JobSpec.DelayedMetaMerge}}"), "0 false");
  assert.throws(
    () => r("{{ .Work }}"),
    (e) => e instanceof TemplateError && /Work/.test(e.message),
  );
  assert.throws(() => r("{{ .This.Wont.Work }}"), TemplateError);
  assert.throws(() => r("{{ .JobSpec.Job.Nope }}"), /can't evaluate field Nope in type Job/);
});

Deno.test("TestStages: Meta fields by cosa's Go names", () => {
  const meta = { buildid: "MockBuild", "coreos-assembler.basearch": "ARMv6" };
  assert.equal(r("{{.Meta.BuildID}}.{{.Meta.Architecture}}", meta), "MockBuild.ARMv6");
  assert.equal(r("{{.Meta.BuildID}}", fcos), "31.20200310.20.0");
  assert.equal(
    r("{{.Meta.BuildArtifacts.Qemu.Path}}", fcos),
    "fedora-coreos-31.20200310.20.0-qemu.x86_64.qcow2.xz",
  );
  assert.equal(r("{{.Meta.BuildArtifacts.Qemu.SizeInBytes}}", fcos), "475755272");
  assert.equal(r("{{.Meta.BuildArtifacts.LiveIso.Path}}", fcos).endsWith(".iso"), true);
  assert.equal(r("{{.Meta.OstreeCommit}}", fcos).slice(0, 8), "981ddd48");
  assert.equal(r("{{.Meta.ContainerConfigGit.Branch}}", fcos), "testing-devel");
  assert.equal(r("{{.Meta.Name}} {{.Meta.OstreeVersion}}", fcos), "fedora-coreos 31.20200310.20.0");
  assert.throws(() => r("{{.Meta.Bogus}}", fcos), /can't evaluate field Bogus in type Build/);
  assert.throws(() => r("{{.Meta.BuildID}}"), MetaUnavailableError);
});

Deno.test("plain text: no HTML escaping, heredocs and redirects untouched", () => {
  const spec: JobSpec = { ...defaultJobSpec(), job: { build_name: `a&b<c>'d"+` } };
  assert.equal(r("echo '{{.JobSpec.Job.BuildName}}'", undefined, spec), `echo 'a&b<c>'d"+'`);
  const heredoc = "cat <<EOF > x\nhello <world\nEOF\nwc -l <file";
  assert.equal(r(heredoc), heredoc);
  assert.equal(r(heredoc + " {{.JobSpec.Job.BuildName}}"), heredoc + " mockOS-99");
});

Deno.test("control flow, functions, variables, trimming, comments", () => {
  assert.equal(
    r("{{range $i, $x := .JobSpec.CloudsCfgs.Aws.Regions}}{{$i}}:{{$x}}{{end}}"),
    "0:us-east-1",
  );
  assert.equal(r("{{range .JobSpec.Stages}}x{{else}}none{{end}}"), "none");
  assert.equal(
    r("{{if .JobSpec.Job.StrictMode}}a{{else if .JobSpec.Job.BuildName}}b{{else}}c{{end}}"),
    "b",
  );
  assert.equal(r("{{with .JobSpec.Job.BuildName}}[{{.}}]{{end}}"), "[mockOS-99]");
  assert.equal(r("a  {{- /* note */ -}}  b"), "ab");
  assert.equal(r("x {{- .JobSpec.Job.BuildName -}} \n y"), "xmockOS-99y");
  assert.equal(r(`{{printf "%s-%d-%q" .JobSpec.Job.BuildName 7 "z"}}`), `mockOS-99-7-"z"`);
  assert.equal(r(`{{.JobSpec.Job.BuildName | printf "<%s>"}}`), "<mockOS-99>");
  assert.equal(r(`{{$n := .JobSpec.Job.BuildName}}{{$n}}{{$}}`.replace("{{$}}", "")), "mockOS-99");
  assert.equal(
    r(`{{if and (eq .JobSpec.Recipe.GitRef "mock") (not .JobSpec.Job.StrictMode)}}y{{end}}`),
    "y",
  );
  assert.equal(r(`{{if or false ""}}y{{else}}n{{end}} {{len "abc"}} {{lt 1 2}}`), "n 3 true");
  assert.equal(r(`{{"}}"}} {{` + "`raw`" + `}}`), "}} raw");
  assert.equal(r("{{ .JobSpec.CloudsCfgs.Aws.Public }}"), "false");
});

Deno.test("the usage guide's Regions[0] example gets a hint to use index", () => {
  assert.throws(
    () => r("{{.JobSpec.CloudsCfgs.Aws.Regions[0]}}"),
    (e) => e instanceof TemplateError && /\{\{index \.X 0\}\}/.test(e.message),
  );
});

Deno.test("template errors are TemplateErrors, never crashes", () => {
  for (
    const t of [
      "{{",
      "{{ .JobSpec",
      "{{ if .JobSpec.Job.StrictMode }}x",
      "{{ end }}",
      "{{ else }}",
      "{{ nope 1 }}",
      "{{ index .JobSpec.CloudsCfgs.Aws.Regions 5 }}",
      "{{ $undefined }}",
      '{{ define "x" }}{{ end }}',
      "{{ ( }}",
      "{{ .JobSpec.Job.BuildName 3 }}",
      '{{ "unterminated }}',
      "{{ range 3.5 }}{{ end }}",
      "{{ @ }}",
    ]
  ) {
    assert.throws(() => r(t), TemplateError, t);
  }
});
