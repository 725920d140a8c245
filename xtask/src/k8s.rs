//! The deployment files' check in `cargo xtask lint`: every overlay of `deploy/k8s` renders
//! (`kubectl kustomize`), and what it renders, with the CloudNativePG `Cluster` of
//! `deploy/postgres/cluster.yaml`, validates strictly and offline against the Kubernetes OpenAPI
//! schemas: `deploy/validate.py`, with the schemas the PyPI package `kubernetes-validate` bundles,
//! in a virtual environment under `target/radfin-dev/k8s-py` created on first use. Unknown fields,
//! wrong types, missing required fields and kinds without a schema are errors.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

/// Pinned: the bundled schemas change with the package's version.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// The Kubernetes versions validated against: the oldest the manifests support (the README says
/// so) and the newest the schemas know.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.31", "1.37"];

/// Renders each overlay to `target/radfin-dev/k8s/<overlay>.yaml` and validates them and the
/// PostgreSQL `Cluster`.
pub fn validate(sh: &Shell, root: &Path) -> anyhow::Result<()> {
    let python = ensure_validator(sh, root)?;
    let out = crate::infra::target_dir(root).join("radfin-dev").join("k8s");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let overlays_dir = root.join("deploy").join("k8s").join("overlays");
    let mut overlays = std::fs::read_dir(&overlays_dir)
        .with_context(|| format!("cannot read {}", overlays_dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    overlays.retain(|p| p.join("kustomization.yaml").is_file());
    overlays.sort();
    anyhow::ensure!(!overlays.is_empty(), "no overlay with a kustomization.yaml in {}", overlays_dir.display());

    let kustomize = kustomize(sh)?;
    let mut files = Vec::new();
    for overlay in &overlays {
        let name = overlay.file_name().context("overlay name")?.to_string_lossy().into_owned();
        let rendered =
            kustomize.render(sh, overlay).with_context(|| format!("deploy/k8s/overlays/{name} does not render"))?;
        let file = out.join(format!("{name}.yaml"));
        std::fs::write(&file, rendered).with_context(|| format!("cannot write {}", file.display()))?;
        files.push(file);
    }
    files.push(root.join("deploy").join("postgres").join("cluster.yaml"));

    let script = root.join("deploy").join("validate.py");
    let versions = KUBERNETES_VERSIONS.into_iter().flat_map(|v| ["-k", v]);
    cmd!(sh, "{python} {script} {versions...} {files...}")
        .run()
        .context("the Kubernetes manifests do not validate (deploy/validate.py)")?;
    Ok(())
}

/// What renders a kustomization: kubectl's built-in kustomize, else a standalone `kustomize`.
enum Kustomize {
    Kubectl,
    Standalone,
}

impl Kustomize {
    fn render(&self, sh: &Shell, dir: &Path) -> anyhow::Result<String> {
        Ok(match self {
            Kustomize::Kubectl => cmd!(sh, "kubectl kustomize {dir}").read()?,
            Kustomize::Standalone => cmd!(sh, "kustomize build {dir}").read()?,
        })
    }
}

fn kustomize(sh: &Shell) -> anyhow::Result<Kustomize> {
    if cmd!(sh, "kubectl kustomize --help").quiet().ignore_stdout().ignore_stderr().run().is_ok() {
        Ok(Kustomize::Kubectl)
    } else if cmd!(sh, "kustomize version").quiet().ignore_stdout().ignore_stderr().run().is_ok() {
        Ok(Kustomize::Standalone)
    } else {
        anyhow::bail!("rendering deploy/k8s needs kubectl (with its built-in kustomize) or kustomize on PATH")
    }
}

/// The virtual environment's python with `kubernetes-validate` at the pinned version, installed
/// from PyPI when missing.
fn ensure_validator(sh: &Shell, root: &Path) -> anyhow::Result<PathBuf> {
    let venv = crate::infra::target_dir(root).join("radfin-dev").join("k8s-py");
    let python = venv.join("bin").join("python");
    let check =
        format!("import kubernetes_validate.version as v; assert v.__version__ == '{KUBERNETES_VALIDATE_VERSION}'");
    let ready = python.exists() && cmd!(sh, "{python} -c {check}").quiet().ignore_stderr().run().is_ok();
    if ready {
        return Ok(python);
    }
    if !python.exists() && cmd!(sh, "python3 -m venv {venv}").quiet().run().is_err() {
        // Debian's python3 needs python3-venv for `-m venv`.
        cmd!(sh, "apt-get install -y --no-install-recommends python3-venv")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
        cmd!(sh, "python3 -m venv {venv}").run().context("cannot create a python virtual environment")?;
    }
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {KUBERNETES_VALIDATE}")
        .run()
        .with_context(|| format!("cannot install {KUBERNETES_VALIDATE} from PyPI"))?;
    println!("python: {KUBERNETES_VALIDATE} installed in {}", venv.display());
    Ok(python)
}
