//! Compiles `proto/` (at the workspace root) with protox, a pure-Rust protobuf compiler, so no
//! system `protoc` is needed. Writes the file descriptor set to `OUT_DIR/radfin_descriptor.bin`
//! (for gRPC reflection) and the prost/tonic code to `OUT_DIR/<package>.rs`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::{env, fs};

use protox::prost::Message as _;

const PROTO_DIR: &str = "../../proto";
const DESCRIPTOR_FILE: &str = "radfin_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir
        .join(PROTO_DIR)
        .canonicalize()
        .map_err(|e| format!("{}: {e}", manifest_dir.join(PROTO_DIR).display()))?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    // A directory is scanned recursively for changes, so new files are noticed too.
    println!("cargo:rerun-if-changed={}", proto_dir.display());

    let mut files = Vec::new();
    proto_files(&proto_dir, &mut files)?;
    // Sorted, so the descriptor set and the generated code are byte-for-byte reproducible.
    files.sort();
    if files.is_empty() {
        return Err(format!("no .proto files under {}", proto_dir.display()).into());
    }

    let fds = protox::compile(&files, [&proto_dir])?;
    fs::write(out_dir.join(DESCRIPTOR_FILE), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .out_dir(&out_dir)
        .compile_fds(fds)?;
    Ok(())
}

/// Every `.proto` file under `dir`, recursively.
fn proto_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
