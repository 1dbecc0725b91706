//! An rpath to DuckDB's prebuilt library (fetched by bondlake-warehouse-duckdb's build script), so an
//! installed `bondlake` finds it outside `cargo run`.
fn main() {
    if let Ok(dir) = std::env::var("DEP_BONDLAKE_DUCKDB_LIBDIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
