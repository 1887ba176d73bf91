//! Windows and macOS collectors and executors (`windows_install`, `macos_install`): they run the platform's own commands and parse their
//! output. The parsers are tested on recorded output (`tests/fixtures`); the code that runs
//! the commands compiles everywhere and is exercised only on those platforms, not on the
//! Linux machines ringfence is built and tested on.

pub mod macos;
pub mod macos_install;
pub mod windows;
pub mod windows_install;
pub mod windows_registry;
pub mod windows_service;
