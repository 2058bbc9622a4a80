"""Cluster configs (clusters/): Ray launcher configs and KubeRay manifests, checked without a cluster
by the checkers of :mod:`tests.cluster_files`. Nothing here starts a cloud cluster or talks to
Kubernetes; the tests at the end show that each checker catches a broken file.
"""

from __future__ import annotations

import copy
import re
import shlex

import pytest
import yaml

from soup_search.config import RunConfig, parse_config
from soup_search.errors import ConfigError
from tests.cluster_files import (
    CLUSTERS, GPU, LAUNCHED, MISSING_FILE, ROOT, command_problems, driver_problem, file_problems, gpu_problem,
    invocations, kuberay_problems, launcher_gpus, launcher_problems, ray_problem, read, scripts,
    search_config_problems, soup_problem,
)


# --- the shipped files ------------------------------------------------------------------------

def test_cluster_files_are_the_expected_ones():
    assert {p.name for p in CLUSTERS} == {"aws-gpu.yaml", "on-prem.yaml", "kuberay-rayjob.yaml", "kuberay-service.yaml"}


@pytest.mark.parametrize("path", CLUSTERS, ids=[p.name for p in CLUSTERS])
def test_every_command_parses_with_the_real_cli(path):
    text, docs = read(path)
    assert any(invocations(s, "soup-search") for s in scripts(text, docs)), "the file never runs soup-search"
    assert command_problems(text, docs) == []


LAUNCHERS = [p for p in CLUSTERS if not p.name.startswith("kuberay")]


@pytest.mark.parametrize("path", LAUNCHERS, ids=[p.name for p in LAUNCHERS])
def test_launcher_configs_follow_rays_schema(path):
    assert launcher_problems(read(path)[1][0]) == []


def test_aws_launcher_has_the_gpus_and_shared_storage_of_its_search_config():
    for launcher, config in LAUNCHED.items():
        cfg = read(ROOT / "clusters" / launcher)[1][0]
        data = yaml.safe_load(config.read_text())
        problems = search_config_problems(data, shared=["/mnt/checkpoints", "/mnt/data"], multi_node=True)
        assert problems + [gpu_problem(data["resources"], launcher_gpus(cfg))] == [None]
        assert launcher_gpus(cfg) == 8 and data["resources"]["storage_path"].startswith("s3://")


KUBERAY = [p for p in CLUSTERS if p.name.startswith("kuberay")]


@pytest.mark.parametrize("path", KUBERAY, ids=[p.name for p in KUBERAY])
def test_kuberay_manifests_hold_together(path):
    docs = read(path)[1]
    expected = {"RayJob", "ConfigMap"} if "rayjob" in path.name else {"RayCluster", "Service"}
    assert expected <= {d["kind"] for d in docs}
    assert kuberay_problems(docs) == []


def test_rayjob_search_config_is_a_valid_multi_node_config():
    docs = read(ROOT / "clusters" / "kuberay-rayjob.yaml")[1]
    data = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["search.yaml"])
    cfg = RunConfig.model_validate(data)
    assert cfg.resources.address == "auto" and cfg.resources.use_gpu is True
    assert cfg.resources.storage_path == "/mnt/runs/tune"
    assert cfg.search.storage.startswith("postgresql+psycopg://")
    with pytest.raises(ConfigError) as err:  # here only the cluster's files are missing
        parse_config(data, root="/")
    assert all(any(re.search(p, problem) for p in MISSING_FILE) for problem in err.value.problems)


# --- each checker catches a broken file ----------------------------------------------------------

def test_invocations_finds_soup_search_wherever_a_command_starts():
    script = "ray stop; env A=1 soup-search run x.yaml --resume && /opt/py/bin/python3 -m soup_search serve --port 1"
    assert invocations(script, "soup-search") == [["run", "x.yaml", "--resume"], ["serve", "--port", "1"]]
    assert invocations(shlex.join(["bash", "-c", "ulimit -n 1; soup-search version"]), "soup-search") == [["version"]]
    assert invocations("ray job submit -- soup-search demo", "soup-search") == [["demo"]]
    assert invocations("kubectl get rayjob soup-search", "soup-search") == []
    assert invocations("ray job submit -- soup-search demo", "ray") == [["job", "submit", "--", "soup-search", "demo"]]


@pytest.mark.parametrize("argv, message", [
    (["serch", "x.yaml"], "No such command 'serch'"),
    (["run", "x.yaml", "--outdir", "runs/x"], "No such option: --outdir"),
    (["run"], "Missing argument 'config'"),
    (["tokens", "create", "--name", "a", "--scope"], "requires an argument"),
    (["remote", "--server", "http://h:8000", "submit", "x.yaml"], "No such option: --server"),
    (["serve", "--port", "eighty"], "Invalid value for '--port'"),
    (["tokens"], "no sub-command"),
])
def test_cli_check_refuses_a_bad_soup_search_command(argv, message):
    assert message in (soup_problem(argv) or "")


def test_cli_check_accepts_good_commands_and_refuses_bad_ray_ones():
    assert soup_problem(["run", "c.yaml", "--out", "runs/c", "--resume"]) is None
    assert soup_problem(["tokens", "create", "--name", "a", "--scope", "admin"]) is None
    assert ray_problem(["start", "--head", "--port=6379", "--dashboard-host=0.0.0.0"]) is None
    assert "No such option" in ray_problem(["start", "--head", "--dashbord-host=0.0.0.0"])
    assert "No such command" in ray_problem(["submitt", "c.yaml"])


def test_command_check_reads_comments_and_launcher_commands():
    text = "#   soup-search run c.yaml --bogus\n# and prose: soup-search run is fine here\n"
    docs = [{"setup_commands": ["pip install x", "soup-search merge"]}]
    problems = command_problems(text, docs)
    assert len(problems) == 2
    assert "No such option: --bogus" in problems[0] and "soup-search merge" in problems[1]


def test_launcher_check_refuses_unknown_keys_and_a_missing_head_type():
    cfg = read(ROOT / "clusters" / "on-prem.yaml")[1][0]
    bad = {**cfg, "min_workers": 2}  # the old on-prem.yaml: no longer a top-level key in Ray's schema
    assert any("'min_workers' was unexpected" in p for p in launcher_problems(bad))
    assert any("one worker per host" in p for p in launcher_problems({**cfg, "max_workers": 5}))
    aws = read(ROOT / "clusters" / "aws-gpu.yaml")[1][0]
    assert any("head_node_type 'cpu'" in p for p in launcher_problems({**aws, "head_node_type": "cpu"}))


def test_gpu_check_counts_a_scorer_and_a_shard_per_gpu():
    assert gpu_problem({"scorers": 4, "shards": 4, "use_gpu": True}, 4) is not None  # the old aws-gpu.yaml
    assert gpu_problem({"scorers": 4, "shards": 4, "use_gpu": True}, 8) is None
    assert gpu_problem({"use_gpu": False}, 2) is not None


def test_storage_url_check_needs_an_installed_driver():
    assert driver_problem("postgresql+psycopg://u@h:5432/db") is None
    assert "cannot be used" in driver_problem("postgresql+nosuchdriver://u@h/db")
    assert "cannot be used" in driver_problem("not a url")
    assert "names no driver" in driver_problem("postgresql://optuna@head-node:5432/optuna")  # the old cluster.yaml


def _break(path: str, change) -> list[str]:
    docs = copy.deepcopy(read(ROOT / "clusters" / path)[1])
    change({d["kind"]: d for d in docs})
    return file_problems("", docs)


def _search(kinds: dict) -> dict:
    return kinds["ConfigMap"]["data"]


def _set_search(kinds: dict, **sections) -> None:
    data = yaml.safe_load(_search(kinds)["search.yaml"])
    for section, values in sections.items():
        data[section] = {**data[section], **values} if values is not None else None
    _search(kinds)["search.yaml"] = yaml.safe_dump(data)


def _head(kinds: dict, kind: str = "RayJob") -> dict:
    spec = kinds[kind]["spec"]
    return (spec["rayClusterSpec"] if kind == "RayJob" else spec)["headGroupSpec"]


def _workers(kinds: dict, kind: str = "RayJob") -> dict:
    spec = kinds[kind]["spec"]
    return (spec["rayClusterSpec"] if kind == "RayJob" else spec)["workerGroupSpecs"][0]


RAYJOB_BREAKS = {
    "rayStartParams not a string": (lambda k: _head(k)["rayStartParams"].update({"num-cpus": 0}), "must be a string"),
    "rayStartParams not a ray start option": (lambda k: _head(k)["rayStartParams"].update({"num-cpu": "0"}), "No such option"),
    "unknown RayJob field": (lambda k: k["RayJob"]["spec"].update({"shutdownAfterJobFinish": True}), "unknown field"),
    "no shutdown": (lambda k: k["RayJob"]["spec"].pop("shutdownAfterJobFinishes"), "outlive the search"),
    "bad entrypoint option": (lambda k: k["RayJob"]["spec"].update(
        {"entrypoint": "soup-search run /configs/search.yaml --outdir /mnt/runs/x"}), "No such option: --outdir"),
    "config not mounted": (lambda k: k["RayJob"]["spec"].update(
        {"entrypoint": "soup-search run /etc/search.yaml --out /mnt/runs/x"}), "not a ConfigMap file"),
    "config key typo": (lambda k: _set_search(k, resources={"shard": 2}), "unknown key 'resources.shard'"),
    "checkpoints not shared": (lambda k: _workers(k)["template"]["spec"]["containers"][0]["volumeMounts"].pop(0),
                               "not on a volume every node mounts"),
    "no storage_path": (lambda k: _set_search(k, resources={"storage_path": None}), "storage_path' is missing"),
    "psycopg2 URL": (lambda k: _set_search(k, search={"storage": "postgresql+nosuchdriver://u@h/db"}), "cannot be used"),
    "too few GPUs": (lambda k: _workers(k).update({"minReplicas": 3}), "needs 6 GPUs; the workers give 3"),
    "GPU request differs": (lambda k: _workers(k)["template"]["spec"]["containers"][0]["resources"]["requests"].update(
        {GPU: "2"}), "must equal its limits"),
    "run folder dies with the cluster": (lambda k: k["RayJob"]["spec"].update(
        {"entrypoint": "soup-search run /configs/search.yaml --out /tmp/x"}), "--out /tmp/x is not on a volume"),
    "missing ConfigMap": (lambda k: k["ConfigMap"]["metadata"].update({"name": "other"}), "is not defined in this file"),
    "wrong apiVersion": (lambda k: k["RayJob"].update({"apiVersion": "ray.io/v1alpha1"}), "unexpected apiVersion"),
}


@pytest.mark.parametrize("name", RAYJOB_BREAKS)
def test_kuberay_check_catches_a_broken_rayjob(name):
    change, message = RAYJOB_BREAKS[name]
    problems = _break("kuberay-rayjob.yaml", change)
    assert any(message in p for p in problems), problems


SERVICE_BREAKS = {
    "wrong target port": (lambda k: k["Service"]["spec"]["ports"][0].update({"targetPort": 9000}), "but serve listens on 8000"),
    "selector misses the head": (lambda k: k["Service"]["spec"].update({"selector": {"app": "x"}}), "no Service selects"),
    "db in the command": (lambda k: _head(k, "RayCluster")["template"]["spec"]["containers"][1]["args"].extend(
        ["--db", "postgresql+psycopg://u:p@h/db"]), "must come from a Secret"),
    "wrong job server": (lambda k: _head(k, "RayCluster")["template"]["spec"]["containers"][1]["args"].__setitem__(
        6, "http://127.0.0.1:8000"), "not the head's dashboard port"),
    "data dir not shared": (lambda k: _workers(k, "RayCluster")["template"]["spec"]["containers"][0]["volumeMounts"].pop(0),
                            "does not mount the service's --data-dir"),
    "no serve": (lambda k: _head(k, "RayCluster")["template"]["spec"]["containers"].pop(1), "runs `soup-search serve`"),
    "bad serve option": (lambda k: _head(k, "RayCluster")["template"]["spec"]["containers"][1]["args"].append("--workers"),
                         "No such option: --workers"),
}


@pytest.mark.parametrize("name", SERVICE_BREAKS)
def test_kuberay_check_catches_a_broken_service(name):
    change, message = SERVICE_BREAKS[name]
    problems = _break("kuberay-service.yaml", change)
    assert any(message in p for p in problems), problems
