//! Rebuilds the crate when a migration is added or changed (they are embedded with
//! `embed_migrations!`, which cannot tell cargo about new directories itself).

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
