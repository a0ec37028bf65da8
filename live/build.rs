//! Compiles the XDP program (ebpf/x0_xdp.c) with clang for the BPF target; x0-node embeds
//! the object. `make test` and `make demo` install clang and libbpf-dev when missing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../ebpf/x0_xdp.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("x0_xdp.o");
    println!("cargo::rerun-if-changed={}", source.display());
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo::rerun-if-env-changed=CLANG");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed ({s}) compiling {}; its errors are above", source.display()),
        Err(e) => panic!(
            "cannot run `{clang}` to build the XDP program ({e}); install it with \
             `apt-get install clang libbpf-dev` (make test does this), or set CLANG"
        ),
    }
}
