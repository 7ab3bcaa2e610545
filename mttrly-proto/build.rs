//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and generates tonic/prost code.

use std::path::PathBuf;

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    let files = [root.join("mttrly/agent/v1/agent.proto"), root.join("mttrly/central/v1/central.proto")];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("mttrly_descriptor.bin"), descriptors.encode_to_vec())?;
    // Smaller per-call message buffers (src/codec.rs): an agent's session is one call for days.
    tonic_prost_build::configure().codec_path("crate::codec::SmallBufferCodec").compile_fds(descriptors)?;
    Ok(())
}
