//! Portable programs found by their version resource, on real Windows programs built here
//! with mingw-w64 (`windres` and `gcc`), laid out in a user's Desktop, Downloads and
//! AppData\Local\Programs as they are on Windows.
#![cfg(target_os = "linux")]

use ringfence_agent::pe::{portable_programs, version_info};
use std::path::{Path, PathBuf};
use std::process::Command;

fn mingw() -> bool {
    let ok = ["x86_64-w64-mingw32-gcc", "x86_64-w64-mingw32-windres"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok_and(|o| o.status.success()));
    if !ok && std::env::var_os("CI").is_some() {
        panic!("mingw-w64 is missing: CI builds Windows programs for these tests (gcc-mingw-w64-x86-64)");
    }
    if !ok {
        eprintln!("SKIPPED: mingw-w64 (x86_64-w64-mingw32-gcc, windres) is not installed");
    }
    ok
}

/// Builds a small Windows program whose version resource says what `fields` say.
fn program(dir: &Path, name: &str, version: [u16; 4], fields: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let v = version.map(|n| n.to_string()).join(",");
    let values: String = fields.iter().map(|(k, v)| format!("      VALUE \"{k}\", \"{v}\"\n")).collect();
    let rc = format!(
        "1 VERSIONINFO\nFILEVERSION {v}\nPRODUCTVERSION {v}\nBEGIN\n  BLOCK \"StringFileInfo\"\n  BEGIN\n    BLOCK \"080904B0\"\n    BEGIN\n{values}    END\n  END\n  BLOCK \"VarFileInfo\"\n  BEGIN\n    VALUE \"Translation\", 0x809, 1200\n  END\nEND\n"
    );
    let work = dir.join(format!("{name}.build"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("v.rc"), rc).unwrap();
    std::fs::write(work.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("x86_64-w64-mingw32-windres")
        .arg(work.join("v.rc"))
        .arg("-O")
        .arg("coff")
        .arg("-o")
        .arg(work.join("v.res")));
    let exe = dir.join(name);
    run(Command::new("x86_64-w64-mingw32-gcc")
        .arg(work.join("main.c"))
        .arg(work.join("v.res"))
        .arg("-o")
        .arg(&exe));
    std::fs::remove_dir_all(&work).unwrap();
    exe
}

#[test]
fn version_resources_of_real_programs_are_read() {
    if !mingw() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ringfence-pe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = program(
        &dir,
        "putty.exe",
        [0, 80, 0, 0],
        &[
            ("CompanyName", "Simon Tatham"),
            ("ProductName", "PuTTY suite"),
            ("FileDescription", "SSH, Telnet, Rlogin, and SUPDUP client"),
            ("ProductVersion", "Release 0.80"),
        ],
    );
    let info = version_info(&std::fs::read(&exe).unwrap()).unwrap();
    assert_eq!(info.product_name.as_deref(), Some("PuTTY suite"));
    assert_eq!(info.company_name.as_deref(), Some("Simon Tatham"));
    assert_eq!(info.product_version.as_deref(), Some("Release 0.80"));
    assert_eq!(info.file_description.as_deref(), Some("SSH, Telnet, Rlogin, and SUPDUP client"));
    assert_eq!(info.file_version.as_deref(), Some("0.80.0.0"));
    // A program without a version resource says so.
    std::fs::write(dir.join("bare.c"), "int main(void) { return 0; }\n").unwrap();
    let bare = dir.join("bare.exe");
    assert!(
        Command::new("x86_64-w64-mingw32-gcc")
            .arg(dir.join("bare.c"))
            .arg("-o")
            .arg(&bare)
            .status()
            .unwrap()
            .success()
    );
    let e = version_info(&std::fs::read(&bare).unwrap()).unwrap_err();
    assert!(e.contains("no version resource") || e.contains("no resources"), "{e}");
    // Cut short, the same program is refused, never read past its end.
    let bytes = std::fs::read(&exe).unwrap();
    for cut in [0x40, 0x100, bytes.len() / 2, bytes.len() - 1] {
        let _ = version_info(&bytes[..cut]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn portable_programs_are_found_in_a_users_folders_only() {
    if !mingw() {
        return;
    }
    let home = std::env::temp_dir().join(format!("ringfence-portable-{}", std::process::id())).join("amy");
    let _ = std::fs::remove_dir_all(&home);
    let fields = [("CompanyName", "Simon Tatham"), ("ProductName", "PuTTY suite")];
    program(&home.join("Desktop"), "putty.exe", [0, 79, 0, 0], &fields);
    program(
        &home.join("AppData/Local/Programs/WinSCP"),
        "WinSCP.exe",
        [6, 3, 3, 0],
        &[("CompanyName", "Martin Prikryl"), ("ProductName", "WinSCP")],
    );
    // Too deep for Downloads (only its top level is read), and outside the portable folders.
    program(&home.join("Downloads/old/archive"), "putty.exe", [0, 70, 0, 0], &fields);
    program(&home.join("Documents"), "putty.exe", [0, 60, 0, 0], &fields);
    let found = portable_programs(std::slice::from_ref(&home));
    let seen: Vec<(&str, &str)> =
        found.iter().map(|p| (p.product_name.as_str(), p.version.as_str())).collect();
    assert_eq!(seen, [("WinSCP", "6.3.3.0"), ("PuTTY suite", "0.79.0.0")]);
    assert!(found[1].path.ends_with("Desktop/putty.exe"));
    let items = ringfence_agent::pe::items_of(&found);
    assert!(items.iter().all(|i| i.manager.as_deref() == Some("portable")));
    let _ = std::fs::remove_dir_all(home.parent().unwrap());
}
