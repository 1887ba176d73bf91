//! Windows executors: Windows Update (manager `windows_update`, a PowerShell script driving
//! the Windows Update Agent COM API: search by KB number or update id, download, install, and
//! read `RebootRequired` and each update's result code) and winget (manager `winget`, exact
//! id and version; a rollback installs the older version). They run only on Windows.
//!
//! Not exercised on this machine (Debian): the command lines are built and the output
//! parsers tested on recorded output strings, on every platform.

use crate::exec::{Failure, PackageRun, append_log, run_command};
use ringfence_proto::jobs::PackageVersion;
use std::time::Duration;

/// The PowerShell script that installs the named updates (`KB5034441` or an update id GUID)
/// and prints one `RF-UPDATE<TAB>id<TAB>title<TAB>result code<TAB>hresult` line per update
/// and a final `RF-REBOOT<TAB>True|False`. Ids are passed as arguments, never spliced into
/// the script (they are validated by the job's check as well).
pub const WINDOWS_UPDATE_SCRIPT: &str = r#"
$ErrorActionPreference = 'Stop'
$wanted = $args
$session = New-Object -ComObject Microsoft.Update.Session
$searcher = $session.CreateUpdateSearcher()
$found = $searcher.Search("IsInstalled=0 and IsHidden=0")
$todo = New-Object -ComObject Microsoft.Update.UpdateColl
foreach ($u in $found.Updates) {
  $kbs = @($u.KBArticleIDs | ForEach-Object { "KB$_" })
  foreach ($w in $wanted) {
    if ($kbs -contains $w -or $u.Identity.UpdateID -eq $w) {
      if (-not $u.EulaAccepted) { $u.AcceptEula() }
      [void]$todo.Add($u)
    }
  }
}
foreach ($w in $wanted) {
  $hit = $false
  foreach ($u in $todo) { if ((@($u.KBArticleIDs | ForEach-Object { "KB$_" }) -contains $w) -or $u.Identity.UpdateID -eq $w) { $hit = $true } }
  if (-not $hit) { Write-Output "RF-MISSING`t$w" }
}
if ($todo.Count -gt 0) {
  $dl = $session.CreateUpdateDownloader(); $dl.Updates = $todo; [void]$dl.Download()
  $inst = $session.CreateUpdateInstaller(); $inst.Updates = $todo
  $res = $inst.Install()
  for ($i = 0; $i -lt $todo.Count; $i++) {
    $u = $todo.Item($i); $r = $res.GetUpdateResult($i)
    $id = if ($u.KBArticleIDs.Count -gt 0) { "KB" + $u.KBArticleIDs.Item(0) } else { $u.Identity.UpdateID }
    Write-Output ("RF-UPDATE`t{0}`t{1}`t{2}`t{3}" -f $id, $u.Title, $r.ResultCode, $r.HResult)
  }
  Write-Output ("RF-REBOOT`t{0}" -f $res.RebootRequired)
} else {
  Write-Output "RF-REBOOT`tFalse"
}
"#;

/// The command line that runs the script for `ids`.
pub fn windows_update_command(ids: &[&str]) -> Vec<String> {
    let mut c = ["powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command"]
        .map(String::from)
        .to_vec();
    c.push(format!("& {{ {WINDOWS_UPDATE_SCRIPT} }}"));
    c.extend(ids.iter().map(|s| s.to_string()));
    c
}

/// What the Windows Update script reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowsUpdateResult {
    /// (id, title, OperationResultCode, HRESULT) per installed update.
    pub updates: Vec<(String, String, i32, i64)>,
    /// Ids the search did not find (already installed, superseded or not offered).
    pub missing: Vec<String>,
    pub reboot_required: bool,
}

/// `OperationResultCode`: 2 succeeded, 3 succeeded with errors; 0, 1, 4 and 5 did not.
pub fn result_code_text(code: i32) -> &'static str {
    match code {
        0 => "not started",
        1 => "in progress",
        2 => "succeeded",
        3 => "succeeded with errors",
        4 => "failed",
        5 => "aborted",
        _ => "unknown result",
    }
}

pub fn parse_windows_update(text: &str) -> Result<WindowsUpdateResult, String> {
    let mut out = WindowsUpdateResult::default();
    let mut saw_end = false;
    for line in text.lines() {
        let f: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
        match f.as_slice() {
            ["RF-UPDATE", id, title, code, hresult] => out.updates.push((
                id.to_string(),
                title.to_string(),
                code.trim().parse().map_err(|_| format!("result code '{code}' is not a number"))?,
                hresult.trim().parse().unwrap_or(0),
            )),
            ["RF-MISSING", id] => out.missing.push(id.to_string()),
            ["RF-REBOOT", flag] => {
                out.reboot_required = flag.trim().eq_ignore_ascii_case("true");
                saw_end = true;
            }
            _ => {}
        }
    }
    if !saw_end {
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
        return Err(format!("the Windows Update script stopped early: {}", last.trim()));
    }
    Ok(out)
}

/// `winget install` of one exact version, with no prompt.
pub fn winget_command(id: &str, version: &str) -> Vec<String> {
    [
        "winget",
        "install",
        "--id",
        id,
        "--version",
        version,
        "--exact",
        "--silent",
        "--accept-package-agreements",
        "--accept-source-agreements",
        "--disable-interactivity",
    ]
    .map(String::from)
    .to_vec()
}

/// Reads winget's output and exit code: `Ok` when installed, else one line why.
pub fn parse_winget(text: &str, code: Option<i32>) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    if code == Some(0)
        && lines.iter().any(|l| l.starts_with("Successfully installed") || l.contains("already installed"))
    {
        return Ok(());
    }
    if let Some(l) = lines.iter().find(|l| l.starts_with("No package found matching input criteria")) {
        return Err(format!("winget: {l} (check the id and that the version is in the source)"));
    }
    if let Some(l) = lines.iter().find(|l| l.starts_with("Installer failed with exit code")) {
        return Err(format!("winget: {l}"));
    }
    if code == Some(0) {
        return Ok(());
    }
    Err(format!(
        "winget exited with {}: {}",
        code.map(|c| format!("0x{:08X}", c as u32)).unwrap_or_else(|| "a signal".into()),
        lines.last().unwrap_or(&"no output")
    ))
}

/// `winget list --id X --exact` prints a table; the version is the column under `Version`.
pub fn parse_winget_list(text: &str, id: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.contains("Id") && l.contains("Version"))?;
    let col = lines[header].find("Version")?;
    lines[header + 1..]
        .iter()
        .find(|l| l.contains(id))
        .and_then(|l| l.get(col..).and_then(|rest| rest.split_whitespace().next()).map(str::to_string))
}

/// Installs the packages (Windows only; see the module comment).
pub fn apply(packages: &[PackageVersion], _rollback: bool) -> PackageRun {
    let mut run = PackageRun::default();
    let timeout = Duration::from_secs(3 * 3600);
    let fail = |run: &mut PackageRun, d: String| {
        if run.failure.is_none() {
            run.failure = Some(Failure::new("install", d));
        }
    };
    let kbs: Vec<&str> =
        packages.iter().filter(|p| p.manager == "windows_update").map(|p| p.name.as_str()).collect();
    if !kbs.is_empty() {
        match run_command(&windows_update_command(&kbs), &[], timeout) {
            Ok(r) => {
                append_log(&mut run.log, &r.output);
                match parse_windows_update(&r.output) {
                    Ok(wu) => {
                        for p in packages.iter().filter(|p| p.manager == "windows_update") {
                            let ok =
                                wu.updates.iter().any(|(id, _, c, _)| id == &p.name && (*c == 2 || *c == 3));
                            run.installed.push(PackageVersion {
                                version: if ok { p.version.clone() } else { String::new() },
                                ..p.clone()
                            });
                        }
                        if let Some((id, _, c, h)) = wu.updates.iter().find(|u| u.2 != 2 && u.2 != 3) {
                            fail(
                                &mut run,
                                format!(
                                    "Windows Update {id}: {} (HRESULT 0x{:08X})",
                                    result_code_text(*c),
                                    *h as u32
                                ),
                            );
                        }
                        if let Some(m) = wu.missing.first() {
                            fail(
                                &mut run,
                                format!(
                                    "Windows Update does not offer {m}: installed already, superseded or not applicable"
                                ),
                            );
                        }
                    }
                    Err(e) => fail(&mut run, e),
                }
            }
            Err(e) => fail(&mut run, e),
        }
    }
    for p in packages.iter().filter(|p| p.manager == "winget") {
        let ok = match run_command(&winget_command(&p.name, &p.version), &[], timeout) {
            Ok(r) => {
                append_log(&mut run.log, &r.output);
                parse_winget(&r.output, r.code)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &ok {
            fail(&mut run, e.clone());
        }
        let listed = run_command(
            &["winget", "list", "--id", &p.name, "--exact"].map(String::from),
            &[],
            Duration::from_secs(120),
        )
        .ok()
        .and_then(|r| parse_winget_list(&r.output, &p.name));
        run.installed.push(PackageVersion { version: listed.unwrap_or_default(), ..p.clone() });
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_update_output_gives_results_and_the_reboot_flag() {
        let out = "RF-MISSING\tKB5000000\r\nRF-UPDATE\tKB5034441\t2024-01 Security Update for Windows Server 2022 (KB5034441)\t2\t0\r\nRF-UPDATE\tKB5034439\tServicing Stack\t4\t-2145124329\r\nRF-REBOOT\tTrue\r\n";
        let r = parse_windows_update(out).unwrap();
        assert_eq!(r.updates.len(), 2);
        assert_eq!(r.updates[1].2, 4);
        assert_eq!(format!("0x{:08X}", r.updates[1].3 as u32), "0x80240017");
        assert_eq!(r.missing, ["KB5000000"]);
        assert!(r.reboot_required);
        let e =
            parse_windows_update("Exception calling \"Search\" with \"1\" argument(s): \"0x8024402C\"\r\n")
                .unwrap_err();
        assert!(e.contains("0x8024402C"), "{e}");
        assert!(parse_windows_update("RF-UPDATE\tKB1\tt\tx\t0\n").is_err());
        assert_eq!(result_code_text(3), "succeeded with errors");
        assert_eq!(windows_update_command(&["KB1"]).last().unwrap(), "KB1");
    }

    #[test]
    fn winget_output_says_installed_or_why_not() {
        let ok = "Found 7-Zip [7zip.7zip] Version 23.01\r\nThis application is licensed to you by its owner.\r\nDownloading https://www.7-zip.org/a/7z2301-x64.msi\r\nSuccessfully verified installer hash\r\nStarting package install...\r\nSuccessfully installed\r\n";
        assert_eq!(parse_winget(ok, Some(0)), Ok(()));
        assert_eq!(
            parse_winget("No package found matching input criteria.\r\n", Some(-1978335212)).unwrap_err(),
            "winget: No package found matching input criteria. (check the id and that the version is in the source)"
        );
        assert_eq!(
            parse_winget(
                "Starting package install...\r\nInstaller failed with exit code: 1603\r\n",
                Some(-1978335226)
            )
            .unwrap_err(),
            "winget: Installer failed with exit code: 1603"
        );
        assert!(parse_winget("", Some(-1978335230)).unwrap_err().contains("0x8A150002"));
        let list = "Name  Id          Version Available Source\r\n------------------------------------------\r\n7-Zip 7zip.7zip   23.01   24.08     winget\r\n";
        assert_eq!(parse_winget_list(list, "7zip.7zip").as_deref(), Some("23.01"));
        assert_eq!(parse_winget_list("No installed package found matching input criteria.", "x"), None);
        assert_eq!(winget_command("7zip.7zip", "23.01")[2..6], ["--id", "7zip.7zip", "--version", "23.01"]);
    }
}
