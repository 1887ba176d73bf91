//! Windows and macOS collectors: they run the platform's own commands and parse their
//! output. The parsers are tested on recorded output (`tests/fixtures`); the code that runs
//! the commands compiles everywhere and is exercised only on those platforms, not on the
//! Linux machines ringfence is built and tested on.

pub mod macos;
pub mod windows;
