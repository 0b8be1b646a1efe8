"""Fetches, builds and caches the binaries the dev environment runs.

Called by `python -m devenv tools` (`make dev-tools`) and at the start of `up`. Every artefact
lives in the cache (`~/.cache/canary/<name>-<version>/`), built into a temporary directory and
renamed into place only when complete, so an interrupted build never leaves a half entry and a
warm cache costs no more than a few `stat` calls. Each build writes its log under
`<cache>/logs/`; a failure names that log. This module starts no long-running process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devenv import layout, linkerd
from devenv.errors import DevEnvError

Report = Callable[[str], None]

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
COMPLETE_MARKER = ".complete"
# Let an older local Go fetch the toolchain a module asks for (through the module proxy).
GO_ENV = {"GOTOOLCHAIN": "auto", "CGO_ENABLED": "0"}


@dataclass(frozen=True)
class Toolset:
    """Paths of everything `up` runs, all inside the cache."""

    kubernetes_version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    kwok_stages: Path
    etcd: Path
    prometheus: Path
    gateway_api_crds: Path
    linkerd: linkerd.Linkerd


def ensure(report: Report) -> Toolset:
    """Returns the toolset, fetching and building whatever the cache lacks (in parallel)."""
    for command in ("go", "apt-get", "apt-cache", "dpkg-deb"):
        _require_command(command)
    version = layout.kubernetes_version()
    jobs: dict[str, Callable[[], tuple[Path, bool]]] = {
        f"kubernetes {version}": lambda: _kubernetes(version, report),
        f"kwok {layout.KWOK_VERSION}": lambda: _kwok(report),
        "etcd (Debian etcd-server)": lambda: _debian_package(
            layout.ETCD_PACKAGE, "usr/bin/etcd", report
        ),
        "prometheus (Debian prometheus)": lambda: _debian_package(
            layout.PROMETHEUS_PACKAGE, "usr/bin/prometheus", report
        ),
        f"Gateway API CRDs {layout.GATEWAY_API_VERSION}": lambda: _gateway_api_crds(report),
    }
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(_timed, job) for name, job in jobs.items()}
        results = {name: _result(name, future, report) for name, future in futures.items()}
    paths = list(results.values())
    k8s_bin, kwok, etcd, prometheus, gateway = paths
    mesh = linkerd.find() or _linkerd_from_source(report)
    return Toolset(
        kubernetes_version=version,
        kube_apiserver=k8s_bin / "kube-apiserver",
        kube_controller_manager=k8s_bin / "kube-controller-manager",
        kube_scheduler=k8s_bin / "kube-scheduler",
        kubectl=k8s_bin / "kubectl",
        kwok=kwok / "bin" / "kwok",
        kwok_stages=kwok / "stages",
        etcd=etcd,
        prometheus=prometheus,
        gateway_api_crds=gateway,
        linkerd=mesh,
    )


def _timed(job: Callable[[], tuple[Path, bool]]) -> tuple[Path, float, bool]:
    started = time.monotonic()
    path, built = job()
    return path, time.monotonic() - started, built


def _result(name: str, future: Future[tuple[Path, float, bool]], report: Report) -> Path:
    path, seconds, built = future.result()
    report(f"{name:<34} {'built' if built else 'cached':<6} {seconds:6.1f}s")
    return path


def _require_command(command: str) -> None:
    if shutil.which(command) is None:
        hint = {
            "go": "install Go 1.22 or newer (https://go.dev/doc/install) and put it on PATH",
            "apt-get": "the dev environment fetches etcd and Prometheus from Debian packages",
        }.get(command, "install it with apt-get")
        raise DevEnvError(f"required tool `{command}` is not on PATH: {hint}")


def build_log(entry: str) -> Path:
    logs = layout.cache_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs / f"{entry}.log"


def run(what: str, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Runs a build step, appending its output to `log`; returns its stdout."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            check=False,
        )
        out.write(proc.stdout)
    if proc.returncode != 0:
        raise DevEnvError(f"{what} failed (exit code {proc.returncode})", log)
    return proc.stdout


def cache_entry(
    name: str, build: Callable[[Path], None], report: Report, note: str = ""
) -> tuple[Path, bool]:
    """`<cache>/<name>` and whether it was built now, by `build(tmpdir)`, or found complete."""
    entry = layout.cache_root() / name
    if (entry / COMPLETE_MARKER).exists():
        return entry, False
    report(f"building {name}{note} (log: {build_log(name)})")
    tmp = entry.with_name(f"{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    if (entry / COMPLETE_MARKER).exists():  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(entry, ignore_errors=True)
        tmp.rename(entry)
    return entry, True


def _kubernetes(version: str, report: Report) -> tuple[Path, bool]:
    name = f"k8s-{version}"
    log = build_log(name)
    major, minor = version.lstrip("v").split(".")[:2]
    version_vars = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
    }
    ldflags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [f"-X {pkg}.{key}={value}" for key, value in version_vars.items()]

    def build(tmp: Path) -> None:
        log.write_text("")
        run(
            f"go build of Kubernetes {version} ({', '.join(K8S_COMMANDS)})",
            [
                "go",
                "build",
                "-trimpath",
                f"-ldflags={' '.join(ldflags)}",
                "-o",
                f"{tmp / 'bin'}/",
                *(f"k8s.io/kubernetes/cmd/{command}" for command in K8S_COMMANDS),
            ],
            log,
            cwd=layout.K8S_MODULE_DIR,
            env=GO_ENV,
        )

    entry, built = cache_entry(
        name, build, report, ", the first time takes 10-15 minutes on 2 cores"
    )
    return entry / "bin", built


# kwok's "fast" preset: Nodes become Ready at once and keep a Lease; pods become Running and
# Ready at once, complete, and go away when deleted. Read from the kwok module, not copied.
KWOK_STAGE_DIRS = ("node/fast", "node/heartbeat-with-lease", "pod/fast")


def _kwok(report: Report) -> tuple[Path, bool]:
    """kwok's binary (`bin/kwok`) and the stage files it runs with (`stages/*.yaml`)."""
    version = layout.KWOK_VERSION
    name = f"kwok-{version}"
    log = build_log(name)

    def build(tmp: Path) -> None:
        log.write_text("")
        out = run(
            f"go mod download of sigs.k8s.io/kwok@{version}",
            ["go", "mod", "download", "-json", f"sigs.k8s.io/kwok@{version}"],
            log,
            cwd=tmp,
            env=GO_ENV,
        )
        stages = tmp / "stages"
        stages.mkdir()
        for directory in KWOK_STAGE_DIRS:
            source = Path(json.loads(out)["Dir"]) / "kustomize" / "stage" / directory
            for file in sorted(source.glob("*.yaml")):
                if file.name != "kustomization.yaml":
                    shutil.copyfile(file, stages / file.name)
        if not any(stages.iterdir()):
            raise DevEnvError(f"no kwok stages found in the kwok {version} module", log)
        run(
            f"go install of kwok {layout.KWOK_VERSION}",
            [
                "go",
                "install",
                "-trimpath",
                "-ldflags=-s -w",
                f"sigs.k8s.io/kwok/cmd/kwok@{layout.KWOK_VERSION}",
            ],
            log,
            cwd=tmp,
            env={**GO_ENV, "GOBIN": str(tmp / "bin")},
        )

    return cache_entry(name, build, report)


def _gateway_api_crds(report: Report) -> tuple[Path, bool]:
    version = layout.GATEWAY_API_VERSION
    name = f"gateway-api-{version}"
    log = build_log(name)

    def build(tmp: Path) -> None:
        log.write_text("")
        out = run(
            f"go mod download of sigs.k8s.io/gateway-api@{version}",
            ["go", "mod", "download", "-json", f"sigs.k8s.io/gateway-api@{version}"],
            log,
            cwd=tmp,
            env=GO_ENV,
        )
        standard = Path(json.loads(out)["Dir"]) / "config" / "crd" / "standard"
        files = sorted(standard.glob("*.yaml"))
        if not files:
            raise DevEnvError(f"no CRDs in {standard}", log)
        (tmp / "crds").mkdir()
        for file in files:
            shutil.copyfile(file, tmp / "crds" / file.name)

    entry, built = cache_entry(name, build, report)
    return entry / "crds", built


def _linkerd_from_source(report: Report) -> linkerd.Linkerd:
    """Clone the named commits and build both binaries into the cache (Rust ≥ 1.90 and Go).

    For contributors outside this project's CI. It could not be run where it was written (no
    access to GitHub there), so it is the recipe of ``../shared/linkerd/README.md`` put into
    commands, not a tested path. The CRDs come from ``linkerd install --crds`` of the same
    checkout and the SMI SDK module (through the Go module proxy).
    """

    def build(tmp: Path) -> None:
        log = build_log(f"linkerd-{linkerd.LINKERD2_COMMIT}")
        for repo, commit, into in (
            (linkerd.LINKERD2_REPO, linkerd.LINKERD2_COMMIT, tmp / "linkerd2"),
            (linkerd.SMI_REPO, linkerd.SMI_COMMIT, tmp / "linkerd-smi"),
        ):
            run(f"git clone {repo}", ["git", "clone", "-q", repo, str(into)], log, tmp)
            run(f"checkout {commit}", ["git", "checkout", "-q", commit], log, into)
        run(
            "cargo build of the policy controller",
            ["cargo", "build", "--release", "--locked", "-p", linkerd.POLICY_CONTROLLER],
            log,
            tmp / "linkerd2",
        )
        (tmp / "bin").mkdir()
        shutil.copy(tmp / "linkerd2/target/release" / linkerd.POLICY_CONTROLLER, tmp / "bin")
        run(
            "go build of the smi adaptor",
            ["go", "build", "-o", str(tmp / "bin" / linkerd.SMI_ADAPTOR), "./adaptor"],
            log,
            tmp / "linkerd-smi",
        )
        (tmp / "crds").mkdir()
        rendered = run(
            "linkerd install --crds",
            ["go", "run", "./cli", "install", "--crds", "--set", "installGatewayAPI=false"],
            log,
            tmp / "linkerd2",
        )
        (tmp / "crds" / "linkerd.yaml").write_text(rendered)
        sdk = go_module_dir(linkerd.SMI_SDK_MODULE, log, tmp)
        shutil.copy(sdk / "crds" / "split.yaml", tmp / "crds" / "smi-trafficsplit.yaml")
        for checkout in ("linkerd2", "linkerd-smi"):
            shutil.rmtree(tmp / checkout)

    for tool in ("git", "cargo", "go"):
        if shutil.which(tool) is None:
            places = ", ".join(f"${v}" for v in linkerd.ENV_VARS.values())
            raise DevEnvError(
                f"Linkerd's policy controller and SMI adaptor are neither named ({places}) nor "
                f"in {linkerd.SHARED_DIR}/bin, and building them needs `{tool}` on PATH"
            )
    entry, _ = cache_entry(
        f"linkerd-{linkerd.LINKERD2_COMMIT}", build, report, ", the first time takes 15-20 minutes"
    )
    binaries = entry / "bin"
    return linkerd.Linkerd(
        binaries / linkerd.POLICY_CONTROLLER, binaries / linkerd.SMI_ADAPTOR, entry / "crds"
    )


def go_module_dir(module: str, log: Path, cwd: Path) -> Path:
    """The unpacked source of a Go module (``path@version``), fetched through the module proxy."""
    out = run(
        f"go mod download of {module}", ["go", "mod", "download", "-json", module], log, cwd, GO_ENV
    )
    return Path(json.loads(out)["Dir"])


def _debian_package(package: str, binary: str, report: Report) -> tuple[Path, bool]:
    """`binary` from Debian's `package`, unpacked with `dpkg-deb -x` so no service starts."""
    cached = sorted(
        layout.cache_root().glob(f"{package}-[0-9]*/{COMPLETE_MARKER}"),
        key=lambda marker: marker.stat().st_mtime,
    )
    if cached:
        return cached[-1].parent / binary, False
    version = _candidate_version(package)
    name = f"{package}-{version.replace(':', '_')}"
    log = build_log(name)

    def build(tmp: Path) -> None:
        log.write_text("")
        download = tmp / "download"
        download.mkdir()
        run(
            f"apt-get download {package}={version}",
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{package}={version}"],
            log,
            cwd=download,
        )
        for deb in download.glob("*.deb"):
            run(f"dpkg-deb -x {deb.name}", ["dpkg-deb", "-x", str(deb), str(tmp)], log, cwd=tmp)
        shutil.rmtree(download)
        if not (tmp / binary).is_file():
            raise DevEnvError(f"{package} {version} has no {binary}", log)

    entry, built = cache_entry(name, build, report)
    return entry / binary, built


def _candidate_version(package: str) -> str:
    """The version apt would install, refreshing the package lists once if apt knows none."""
    for attempt in range(2):
        out = subprocess.run(
            ["apt-cache", "policy", package], capture_output=True, text=True, check=False
        ).stdout
        for line in out.splitlines():
            key, _, value = line.strip().partition(": ")
            if key == "Candidate" and value and value != "(none)":
                return value
        if attempt == 0:
            log = build_log("apt-get-update")
            run("apt-get update", ["apt-get", "update", "-qq"], log, cwd=Path("/"))
    raise DevEnvError(f"apt knows no candidate version of the Debian package `{package}`")
