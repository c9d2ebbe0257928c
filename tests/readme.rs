//! The README's commands work as written.

/// `cargo run -- demo` is the README's first command; with three binaries
/// in the package (`card-issuer`, `card-issuer-lab`, `card-issuer-bench`)
/// cargo refuses to guess which one to run unless the package names it.
#[test]
fn the_readme_s_cargo_run_commands_run_the_worker_binary() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap();
    let package = manifest
        .split("\n[")
        .next()
        .expect("Cargo.toml starts with [package]");

    assert!(readme.contains("cargo run -- demo"));
    assert!(
        package
            .lines()
            .any(|line| line.replace(' ', "") == "default-run=\"card-issuer\""),
        "Cargo.toml's [package] must say default-run = \"card-issuer\""
    );
}
