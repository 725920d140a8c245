//! A Python with `grpcio` and `grpcio-reflection`, for the test that calls the services through
//! gRPC reflection with a stock client: a virtual environment under `target/radfin-dev/py`,
//! created (from PyPI) on first use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

const PACKAGES: [&str; 2] = ["grpcio", "grpcio-reflection"];

pub fn ensure_grpc(sh: &Shell, root: &Path) -> anyhow::Result<PathBuf> {
    let venv = crate::infra::target_dir(root).join("radfin-dev").join("py");
    let python = venv.join("bin").join("python");
    let ready =
        python.exists() && cmd!(sh, "{python} -c 'import grpc, grpc_reflection'").quiet().ignore_stderr().run().is_ok();
    if ready {
        return Ok(python);
    }
    if cmd!(sh, "python3 -m venv {venv}").quiet().run().is_err() {
        // Debian's python3 needs python3-venv for `-m venv`.
        cmd!(sh, "apt-get install -y --no-install-recommends python3-venv")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
        cmd!(sh, "python3 -m venv {venv}").run().context("cannot create a python virtual environment")?;
    }
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {PACKAGES...}")
        .run()
        .context("cannot install grpcio and grpcio-reflection from PyPI")?;
    println!("python: grpcio and grpcio-reflection installed in {}", venv.display());
    Ok(python)
}
