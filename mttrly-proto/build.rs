//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and generates tonic/prost code.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    // Every `.proto` under the two packages' directories: a service added in its own file needs
    // no edit here (and two people adding services never edit the same line).
    let mut files = Vec::new();
    for dir in ["mttrly/agent/v1", "mttrly/central/v1"] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "proto") {
                println!("cargo:rerun-if-changed={}", path.display());
                files.push(path);
            }
        }
    }
    // Directory order is the file system's: sort so the descriptor set is reproducible.
    files.sort();
    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("mttrly_descriptor.bin"), descriptors.encode_to_vec())?;
    // Smaller per-call message buffers (src/codec.rs): an agent's session is one call for days.
    tonic_prost_build::configure().codec_path("crate::codec::SmallBufferCodec").compile_fds(descriptors)?;
    Ok(())
}
