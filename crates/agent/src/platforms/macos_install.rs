//! macOS executor (manager `softwareupdate`): `softwareupdate --install LABEL` for each
//! update label the job names, with the output read for success, "restart required" and
//! errors. There is no rollback on macOS: a rollback job fails with a clear detail. Runs only
//! on macOS.
//!
//! Not exercised on this machine (Debian): the command line is built and the parser tested
//! on recorded output strings, on every platform.

use crate::exec::{Failure, PackageRun, append_log, run_command};
use ringfence_proto::jobs::PackageVersion;
use std::time::Duration;

pub fn install_command(label: &str) -> Vec<String> {
    ["softwareupdate", "--install", label, "--no-scan"].map(String::from).to_vec()
}

/// What `softwareupdate --install` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftwareUpdateResult {
    pub installed: bool,
    pub restart_required: bool,
}

/// Reads `softwareupdate --install` output: `Done with LABEL` / `Done.` means installed; a
/// restart note asks for a reboot; `No such update` or `Error` is a failure.
pub fn parse_install(text: &str, label: &str) -> Result<SoftwareUpdateResult, String> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if let Some(l) =
        lines.iter().find(|l| l.starts_with("No such update") || l.starts_with("No updates are available"))
    {
        return Err(format!("softwareupdate: {l} ({label} is installed already or not offered)"));
    }
    if let Some(l) = lines.iter().find(|l| l.starts_with("Error") || l.contains("failed")) {
        return Err(format!("softwareupdate: {l}"));
    }
    let installed = lines.iter().any(|l| l.starts_with("Done with") || *l == "Done.");
    if !installed {
        return Err(format!(
            "softwareupdate did not report {label} as done: {}",
            lines.last().unwrap_or(&"no output")
        ));
    }
    let restart_required = lines.iter().any(|l| l.contains("restart") || l.contains("Restart"));
    Ok(SoftwareUpdateResult { installed, restart_required })
}

/// Installs the labels (macOS only; see the module comment).
pub fn apply(packages: &[PackageVersion], rollback: bool) -> PackageRun {
    let mut run = PackageRun::default();
    for p in packages {
        let result = if rollback {
            Err("macOS updates cannot be rolled back with softwareupdate: restore from a backup".to_string())
        } else {
            run_command(&install_command(&p.name), &[], Duration::from_secs(3 * 3600)).and_then(|r| {
                append_log(&mut run.log, &r.output);
                parse_install(&r.output, &p.name)
            })
        };
        match result {
            Ok(_) => run.installed.push(p.clone()),
            Err(e) => {
                run.installed.push(PackageVersion { version: String::new(), ..p.clone() });
                if run.failure.is_none() {
                    run.failure = Some(Failure::new("install", e));
                }
            }
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softwareupdate_output_says_done_restart_or_why_not() {
        let ok = "Software Update Tool\n\nFinding available software\n\nDownloading Safari\nDownloaded Safari\nInstalling Safari\nDone with Safari\nDone.\n";
        assert_eq!(
            parse_install(ok, "Safari17.5VenturaAuto-17.5"),
            Ok(SoftwareUpdateResult { installed: true, restart_required: false })
        );
        let restart = "Software Update Tool\n\nDownloading macOS Ventura 13.6.7\nDone with macOS Ventura 13.6.7\nDone.\n\nYou have installed one or more updates that requires that you restart your\ncomputer. Please restart immediately.\n";
        assert!(parse_install(restart, "x").unwrap().restart_required);
        assert!(
            parse_install("Software Update Tool\n\nNo such update\nNo updates are available.\n", "Nope-1")
                .unwrap_err()
                .contains("No such update")
        );
        assert!(
            parse_install("Error downloading updates.\n", "x")
                .unwrap_err()
                .starts_with("softwareupdate: Error")
        );
        assert!(parse_install("", "x").unwrap_err().contains("did not report x"));
        assert_eq!(install_command("Safari")[..3], ["softwareupdate", "--install", "Safari"]);
    }
}
