//! `sqlx::migrate!` embeds `migrations/` when this crate compiles, but Cargo
//! does not know about that folder, so a migration added without a change to
//! the crate's sources would be left out of the build.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
