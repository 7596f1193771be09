//! Rebuild when a migration changes: `sqlx::migrate!` embeds the SQL files at compile time
//! but cargo does not know to watch them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
