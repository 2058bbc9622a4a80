"""Checkers for the cluster configs in clusters/ (used by tests/test_clusters.py): each returns
the problems it finds in a Ray launcher config or a KubeRay manifest, none needing a cluster.

Every ``soup-search`` and ``ray`` command the files run or show (launcher commands, a RayJob's
entrypoint, container commands, the usage lines in comments) is parsed by the real CLI (click), so
an unknown command, option or a missing argument fails. Launcher configs are validated with Ray's
own cluster schema; KubeRay manifests against the field names of the KubeRay v1.7.0 CRDs (ray.io/v1)
and for what soup-search needs of them: the search config mounted where the entrypoint reads it and
valid, its files on volumes every pod mounts, GPUs for its actors, the service's port and database
from a Secret.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from pathlib import Path

import click
import jsonschema
import ray.autoscaler
import typer
import typer.main
import yaml
from ray.scripts.scripts import cli as ray_cli
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from soup_search.cli import app
from soup_search.config import parse_config
from soup_search.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = sorted((ROOT / "clusters").glob("*.yaml"))
#: the launcher config, and the search config it is written for
LAUNCHED = {"aws-gpu.yaml": ROOT / "configs" / "cluster.yaml"}

# --- commands ---------------------------------------------------------------------------------

SHELL_OPERATORS = {";", "&&", "||", "|", "&", "(", ")"}
PREFIXES = {"env", "exec", "nohup", "time"}
#: comment lines that show a command start with one of these words
COMMAND_WORDS = ("soup-search", "python", "ray", "kubectl")


def _segments(script: str) -> list[list[str]]:
    """A shell script as simple commands (token lists), split at newlines and operators."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        segment: list[str] = []
        for token in lexer:
            if token in SHELL_OPERATORS:
                out.append(segment)
                segment = []
            else:
                segment.append(token)
        out.append(segment)
    return [s for s in out if s]


def _starts(tokens: list[str]) -> list[int]:
    """Where a command may start: the segment's first word (after env, exec, VAR=value) or after ``--``."""
    i = 0
    while i < len(tokens) and (tokens[i] in PREFIXES or re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[i])):
        i += 1
    return [i] + [j + 1 for j, t in enumerate(tokens) if t == "--"]


def invocations(script: str, program: str) -> list[list[str]]:
    """The argument lists of every ``program`` command in a shell script: ``soup-search ...`` (or
    ``python -m soup_search ...``) or ``ray ...``, also inside quoted scripts (``bash -c '...'``)."""
    found = []
    for tokens in _segments(script):
        for i in _starts(tokens):
            rest = tokens[i:]
            if rest[:1] == [program]:
                found.append(rest[1:])
            elif program == "soup-search" and len(rest) >= 3 and posixpath.basename(rest[0]).startswith("python") \
                    and rest[1:3] == ["-m", "soup_search"]:
                found.append(rest[3:])
        for token in tokens:
            if re.search(r"\s", token):
                found += invocations(token, program)
    return found


def cli_problem(root, name: str, argv: list[str]) -> str | None:
    """Why ``name argv`` would not parse (unknown command or option, missing argument), or None.

    ``root`` is a click command: ray's, or typer's (typer carries its own copy of click)."""
    parent = root.context_class(root, info_name=name)
    command, args = root, list(argv)
    try:
        while hasattr(command, "resolve_command"):  # a group
            if not args:
                return f"`{shlex.join([name, *argv])}`: no sub-command"
            sub, command, args = command.resolve_command(parent, args)
            parent = command.context_class(command, info_name=sub, parent=parent)
        command.make_context(parent.info_name, args, parent=parent.parent)
    except (click.exceptions.Exit, typer.Exit):
        return None  # --help, --version
    except (click.ClickException, typer.exceptions.TyperException) as exc:
        return f"`{shlex.join([name, *argv])}`: {exc.format_message()}"
    return None


def soup_problem(argv: list[str]) -> str | None:
    return cli_problem(typer.main.get_command(app), "soup-search", argv)


def ray_problem(argv: list[str]) -> str | None:
    return cli_problem(ray_cli, "ray", argv)


def comment_scripts(text: str) -> list[str]:
    """The commands shown in a file's comments (``#   ray up clusters/x.yaml``)."""
    lines = [line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip().startswith("#")]
    return [line for line in lines if line.split(" ", 1)[0] in COMMAND_WORDS]


def _walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def pod_specs(doc: dict) -> list[dict]:
    """Every pod spec in a document (anything with a list of containers)."""
    return [n for n in _walk(doc) if isinstance(n, dict) and isinstance(n.get("containers"), list)]


def scripts(text: str, docs: list[dict]) -> list[str]:
    """Every shell command a cluster file runs or shows."""
    found = comment_scripts(text)
    for doc in docs:
        found += [c for key, cmds in doc.items() if key.endswith("_commands") for c in cmds or []]
        if doc.get("kind") == "RayJob":
            found.append(doc["spec"].get("entrypoint", ""))
        for pod in pod_specs(doc):
            for c in pod["containers"] + pod.get("initContainers", []):
                found.append(shlex.join([str(a) for a in c.get("command", []) + c.get("args", [])]))
    return found


def command_problems(text: str, docs: list[dict]) -> list[str]:
    problems = []
    for script in scripts(text, docs):
        problems += [p for argv in invocations(script, "soup-search") if (p := soup_problem(argv))]
        problems += [p for argv in invocations(script, "ray") if (p := ray_problem(argv))]
    return problems


def read(path: Path) -> tuple[str, list[dict]]:
    text = path.read_text()
    return text, [d for d in yaml.safe_load_all(text) if d is not None]


# --- search configs ---------------------------------------------------------------------------

#: the problems a valid config has on a machine without the cluster's files (group 1: the path)
MISSING_FILE = (r"no checkpoint directory at (/\S+)", r"data file (/\S+) does not exist")


def driver_problem(url: str) -> str | None:
    """Why SQLAlchemy could not open a database URL (unknown dialect, driver not installed), or
    a PostgreSQL URL without its driver: SQLAlchemy 2.0 (pyproject allows it) reads plain
    ``postgresql://`` as psycopg2, which soup-search does not install; 2.1 as psycopg 3."""
    fix = "for PostgreSQL write postgresql+psycopg://"
    try:
        parsed = make_url(url)
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        return f"database URL {url!r} cannot be used ({type(exc).__name__}: {exc}); {fix}"
    if parsed.drivername == "postgresql":
        return f"database URL {url!r} names no driver (psycopg2 on SQLAlchemy 2.0, not installed); {fix}"
    return None


def search_config_problems(data: dict, shared: list[str], multi_node: bool) -> list[str]:
    """A search config's problems, but files that only the cluster has: those must lie under one of
    the ``shared`` folders (mounted on every node). A multi-node search needs a shared Tune dir."""
    try:
        parse_config(data, source="search config", root="/")
        problems: list[str] = []
    except ConfigError as exc:
        problems = list(exc.problems)
    left = []
    for problem in problems:
        match = next((m for p in MISSING_FILE if (m := re.search(p, problem))), None)
        if match is None:
            left.append(problem)
        elif not _under(match.group(1), shared):
            left.append(f"{match.group(1)} is not on a volume every node mounts ({', '.join(shared) or 'none'})")
    search, resources = data.get("search") or {}, data.get("resources") or {}
    if search.get("storage") and (p := driver_problem(search["storage"])):
        left.append(f"'search.storage': {p}")
    storage_path = resources.get("storage_path")
    if multi_node and not storage_path:
        left.append("'resources.storage_path' is missing: a multi-node search needs Tune's dir on shared storage")
    elif storage_path and "://" not in storage_path and not _under(storage_path, shared):
        left.append(f"'resources.storage_path' {storage_path} is not on a volume every node mounts")
    return left


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


# --- Ray launcher configs ---------------------------------------------------------------------

RAY_SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def launcher_problems(cfg: dict) -> list[str]:
    problems = [f"{'.'.join(map(str, e.path)) or '(top level)'}: {e.message}"
                for e in jsonschema.Draft7Validator(RAY_SCHEMA).iter_errors(cfg)]
    types = cfg.get("available_node_types")
    if types is not None and cfg.get("head_node_type") not in types:
        problems.append(f"head_node_type {cfg.get('head_node_type')!r} is not in available_node_types")
    for name, node in (types or {}).items():
        if node.get("min_workers", 0) > node.get("max_workers", 0) or node.get("max_workers", 0) > cfg.get("max_workers", 0):
            problems.append(f"{name}: min_workers <= max_workers <= the cluster's max_workers does not hold")
    provider = cfg.get("provider") or {}
    if provider.get("type") == "local" and cfg.get("max_workers") != len(provider.get("worker_ips", [])):
        problems.append("local provider: max_workers must be the number of worker_ips (one worker per host)")
    return problems


def launcher_gpus(cfg: dict) -> float:
    """The GPUs the workers a launcher config always has give (min_workers of each node type)."""
    return sum(n.get("min_workers", 0) * n.get("resources", {}).get("GPU", 0)
               for name, n in cfg.get("available_node_types", {}).items() if name != cfg.get("head_node_type"))


def gpu_problem(resources: dict, gpus: float) -> str | None:
    """Scorers take a GPU each and shards one more each when use_gpu is set; none are used otherwise."""
    need = resources.get("scorers", 2) + resources.get("shards", 2)
    if resources.get("use_gpu") is True and gpus < need:
        return f"use_gpu with {resources.get('scorers', 2)} scorers and {resources.get('shards', 2)} shards needs {need} GPUs; the workers give {gpus:g}"
    if resources.get("use_gpu") is False and gpus:
        return f"use_gpu is false but the workers request {gpus:g} GPUs"
    return None


# --- KubeRay manifests ------------------------------------------------------------------------

KINDS = {("ray.io/v1", "RayJob"), ("ray.io/v1", "RayCluster"), ("v1", "ConfigMap"), ("v1", "Secret"),
         ("v1", "Service"), ("v1", "PersistentVolumeClaim"), ("batch/v1", "Job")}
#: the spec fields of the KubeRay v1.7.0 CRDs (ray-operator/config/crd/bases, ray.io/v1)
RAYJOB_SPEC = {"activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy", "entrypoint",
               "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId", "managedBy", "metadata",
               "preRunningDeadlineSeconds", "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes",
               "submissionMode", "submitterConfig", "submitterPodTemplate", "suspend", "ttlSecondsAfterFinished"}
RAYCLUSTER_SPEC = {"authOptions", "autoscalerOptions", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
                   "headGroupSpec", "headServiceAnnotations", "historyServerOptions", "managedBy", "networkPolicy",
                   "rayVersion", "suspend", "tlsOptions", "upgradeStrategy", "workerGroupSpecs"}
HEAD_GROUP = {"enableIngress", "headService", "ingressOptions", "labels", "rayStartParams", "resources",
              "serviceType", "template"}
WORKER_GROUP = {"groupName", "idleTimeoutSeconds", "labels", "maxReplicas", "minReplicas", "numOfHosts", "priority",
                "rayStartParams", "replicas", "resources", "scaleStrategy", "suspend", "template"}
GPU = "nvidia.com/gpu"


def _unknown(where: str, given: dict, known: set[str]) -> list[str]:
    return [f"{where}: unknown field {k!r} (KubeRay v1.7.0)" for k in sorted(set(given) - known)]


def _mounts(container: dict) -> list[str]:
    return [m["mountPath"] for m in container.get("volumeMounts", [])]


def _gpus(container: dict, where: str, problems: list[str]) -> float:
    res = container.get("resources", {})
    limit, request = res.get("limits", {}).get(GPU), res.get("requests", {}).get(GPU)
    if request is not None and str(request) != str(limit):
        problems.append(f"{where}: {GPU} requests ({request}) must equal its limits ({limit})")
    return float(limit or 0)


def _defined(docs: list[dict], kind: str) -> set[str]:
    return {d["metadata"]["name"] for d in docs if d.get("kind") == kind}


def reference_problems(docs: list[dict]) -> list[str]:
    """ConfigMaps, Secrets and PVCs a pod uses are defined in the same file; mounts name pod volumes."""
    problems = []
    wanted = {"ConfigMap": _defined(docs, "ConfigMap"), "Secret": _defined(docs, "Secret"),
              "PersistentVolumeClaim": _defined(docs, "PersistentVolumeClaim")}
    for pod in (p for d in docs for p in pod_specs(d)):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for v in volumes.values():
            for kind, ref in (("ConfigMap", (v.get("configMap") or {}).get("name")),
                              ("Secret", (v.get("secret") or {}).get("secretName")),
                              ("PersistentVolumeClaim", (v.get("persistentVolumeClaim") or {}).get("claimName"))):
                if ref is not None and ref not in wanted[kind]:
                    problems.append(f"volume {v['name']!r}: {kind} {ref!r} is not defined in this file")
        for c in pod["containers"]:
            problems += [f"container {c['name']!r}: volumeMount {m['name']!r} is not a volume of its pod"
                         for m in c.get("volumeMounts", []) if m["name"] not in volumes]
            for env in c.get("env", []):
                ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                if ref is not None and ref not in wanted["Secret"]:
                    problems.append(f"container {c['name']!r}: env {env['name']}: Secret {ref!r} is not defined in this file")
    return problems


def cluster_spec_problems(spec: dict, where: str) -> tuple[list[str], float]:
    """A RayCluster spec's field names and rayStartParams; the GPUs its worker groups always have."""
    problems = _unknown(where, spec, RAYCLUSTER_SPEC) + _unknown(f"{where}.headGroupSpec", spec["headGroupSpec"], HEAD_GROUP)
    gpus = 0.0
    groups = [("headGroupSpec", spec["headGroupSpec"], ["start", "--head"])] + [
        (f"workerGroupSpecs[{g.get('groupName')}]", g, ["start", "--address=head:6379"]) for g in spec.get("workerGroupSpecs", [])]
    for name, group, start in groups:
        if name != "headGroupSpec":
            problems += _unknown(f"{where}.{name}", group, WORKER_GROUP)
        for key, value in group.get("rayStartParams", {}).items():
            if not isinstance(value, str):
                problems.append(f"{where}.{name}.rayStartParams.{key}: {value!r} must be a string (quote it)")
            elif (p := ray_problem([*start, f"--{key}={value}"] if value else [*start, f"--{key}"])):
                problems.append(f"{where}.{name}.rayStartParams.{key}: {p}")
        per_pod = sum(_gpus(c, f"{where}.{name}", problems) for c in group["template"]["spec"]["containers"])
        gpus += per_pod * (group.get("minReplicas", group.get("replicas", 0)) if name != "headGroupSpec" else 1)
    return problems, gpus


def _config_map_file(docs: list[dict], pod: dict, container: dict, path: str) -> str | None:
    """The text of ``path`` in a container when a ConfigMap volume provides it, else None."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        cm = (volumes.get(m["name"], {}).get("configMap") or {})
        if cm and posixpath.dirname(path) == m["mountPath"].rstrip("/"):
            items = {i["path"]: i["key"] for i in cm.get("items", [])} or None
            key = items.get(posixpath.basename(path)) if items else posixpath.basename(path)
            data = next((d.get("data", {}) for d in docs if d.get("kind") == "ConfigMap"
                         and d["metadata"]["name"] == cm.get("name")), {})
            return data.get(key)
    return None


def rayjob_problems(docs: list[dict], job: dict) -> list[str]:
    spec = job["spec"]
    problems = _unknown("RayJob.spec", spec, RAYJOB_SPEC)
    if "shutdownAfterJobFinishes" not in spec:
        problems.append("RayJob.spec.shutdownAfterJobFinishes is not set: the cluster would outlive the search")
    found, gpus = cluster_spec_problems(spec["rayClusterSpec"], "RayJob.spec.rayClusterSpec")
    problems += found
    head_pod = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    head = head_pod["containers"][0]
    pods = [head_pod] + [g["template"]["spec"] for g in spec["rayClusterSpec"].get("workerGroupSpecs", [])]
    shared = [m for m in _mounts(head) if all(m in _mounts(p["containers"][0]) for p in pods)]
    runs = [argv for argv in invocations(spec.get("entrypoint", ""), "soup-search") if argv[:1] == ["run"]]
    if not runs:
        problems.append("RayJob.spec.entrypoint does not run `soup-search run CONFIG`")
    for argv in runs:
        config_path = argv[1] if len(argv) > 1 else ""
        text = _config_map_file(docs, head_pod, head, config_path)
        if text is None:
            problems.append(f"the entrypoint's config {config_path} is not a ConfigMap file mounted in the head container")
            continue
        data = yaml.safe_load(text)
        problems += search_config_problems(data, shared, multi_node=len(pods) > 1)
        if p := gpu_problem(data.get("resources") or {}, gpus):
            problems.append(p)
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        if out is None or not _under(out, _mounts(head)):
            problems.append(f"the entrypoint's --out {out} is not on a volume of the head: the run would die with the cluster")
    return problems


def raycluster_service_problems(docs: list[dict], cluster: dict) -> list[str]:
    """The head runs `soup-search serve`; a Service exposes its port; its database comes from a Secret."""
    problems, _ = cluster_spec_problems(cluster["spec"], "RayCluster.spec")
    head_pod = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    serving = [(c, argv) for c in head_pod["containers"] for argv in
               invocations(shlex.join(c.get("command", []) + c.get("args", [])), "soup-search") if argv[:1] == ["serve"]]
    if not serving:
        return problems + ["no container of the head pod runs `soup-search serve`"]
    container, argv = serving[0]
    option = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    port = int(option.get("--port", 8000))
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    services = [d for d in docs if d.get("kind") == "Service"
                and d["spec"].get("selector") == {"ray.io/cluster": cluster["metadata"]["name"], "ray.io/node-type": "head"}]
    if not services:
        problems.append(f"no Service selects the head pod of {cluster['metadata']['name']!r}")
    for svc in services:
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            if ports.get(target, target) != port or port not in ports.values():
                problems.append(f"Service {svc['metadata']['name']!r} targets {target!r}, but serve listens on {port}")
    dashboard = {p["containerPort"] for c in head_pod["containers"] for p in c.get("ports", []) if p.get("name") == "dashboard"}
    if urlport(option.get("--ray-address")) not in dashboard:
        problems.append(f"serve --ray-address {option.get('--ray-address')} is not the head's dashboard port {sorted(dashboard)}")
    db = next((e for e in container.get("env", []) if e["name"] == "SOUP_SEARCH_DB"), None)
    if "--db" in option or db is None or "secretKeyRef" not in (db.get("valueFrom") or {}):
        problems.append("the service's database URL must come from a Secret (env SOUP_SEARCH_DB, secretKeyRef)")
    data_dir = option.get("--data-dir")
    workers = [g["template"]["spec"]["containers"][0] for g in cluster["spec"].get("workerGroupSpecs", [])]
    for c in [*head_pod["containers"], *workers]:
        if data_dir is None or not _under(data_dir, _mounts(c)):
            problems.append(f"container {c['name']!r} does not mount the service's --data-dir {data_dir} "
                            "(searches' configs and run folders live there)")
    return problems


def urlport(url: str | None) -> int | None:
    match = re.search(r":(\d+)/?$", url or "")
    return int(match.group(1)) if match else None


def kuberay_problems(docs: list[dict]) -> list[str]:
    problems = []
    for d in docs:
        if (d.get("apiVersion"), d.get("kind")) not in KINDS:
            problems.append(f"unexpected apiVersion/kind {d.get('apiVersion')}/{d.get('kind')}")
        if not (d.get("metadata") or {}).get("name"):
            problems.append(f"{d.get('kind')}: metadata.name is missing")
    problems += reference_problems(docs)
    for d in docs:
        if d.get("kind") == "RayJob":
            problems += rayjob_problems(docs, d)
        elif d.get("kind") == "RayCluster":
            problems += raycluster_service_problems(docs, d)
    for secret in (d for d in docs if d.get("kind") == "Secret"):
        problems += [p for v in (secret.get("stringData") or {}).values()
                     if isinstance(v, str) and "://" in v and (p := driver_problem(v))]
    return problems


def file_problems(text: str, docs: list[dict]) -> list[str]:
    """Every problem of a cluster file: its commands, then its launcher config or manifests."""
    checks = kuberay_problems(docs) if "kind" in docs[0] else launcher_problems(docs[0])
    return command_problems(text, docs) + checks
