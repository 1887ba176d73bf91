//! Windows executors: Windows Update (manager `windows_update`, a PowerShell script driving
//! the Windows Update Agent COM API: search by KB number or update id, download, install, and
//! read `RebootRequired` and each update's result code) and winget (manager `winget`, exact
//! id and version; a rollback installs the older version). They run only on Windows.
//!
//! A Windows update is undone by its kind, which the rollback job names in the package's
//! version (the update has no previous version to go back to):
//! - `uninstall` (quality and cumulative updates): `wusa /uninstall /kb:N /quiet /norestart`,
//!   and where wusa cannot (combined servicing stack and cumulative packages), DISM's
//!   `/Remove-Package` of the package `DISM /Get-Packages` lists for it;
//! - `os_uninstall` (feature updates): `DISM /Online /Initiate-OSUninstall` while
//!   `/Get-OSUninstallWindow` says the previous version is still there;
//! - `previous_driver` (drivers, the package named by its INF): the newest package of that
//!   INF is removed from the driver store with `pnputil /delete-driver … /uninstall`, so the
//!   previous package serves the device again;
//! - `none` (servicing stack, definitions): refused with the reason.
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

/// `wusa` removing one update by its KB number, without prompts or a restart.
pub fn wusa_uninstall_command(kb: &str) -> Vec<String> {
    let number = kb.trim_start_matches("KB").trim_start_matches("kb");
    ["wusa.exe", "/uninstall", &format!("/kb:{number}"), "/quiet", "/norestart"].map(String::from).to_vec()
}

/// What wusa's exit code means: `Ok(reboot needed)`, or why it could not remove the update.
pub fn wusa_outcome(code: Option<i32>) -> Result<bool, WusaRefusal> {
    match code {
        Some(0) => Ok(false),
        Some(3010) => Ok(true),
        // WU_S_NOT_INSTALLED / "the update is not installed on this computer".
        Some(2359303) => Err(WusaRefusal::NotInstalled),
        Some(c) => Err(WusaRefusal::Failed(format!("wusa exited with 0x{:08X}", c as u32))),
        None => Err(WusaRefusal::Failed("wusa was stopped".into())),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WusaRefusal {
    NotInstalled,
    /// Often: a combined servicing stack and cumulative package, which only DISM removes.
    Failed(String),
}

pub const DISM_PACKAGES: [&str; 4] = ["dism.exe", "/Online", "/Get-Packages", "/Format:Table"];

/// One row of `DISM /Online /Get-Packages /Format:Table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DismPackage {
    pub identity: String,
    pub state: String,
    pub release_type: String,
}

pub fn parse_dism_packages(text: &str) -> Vec<DismPackage> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').map(str::trim).collect();
            (f.len() >= 3 && f[0].starts_with("Package_")).then(|| DismPackage {
                identity: f[0].to_string(),
                state: f[1].to_string(),
                release_type: f[2].to_string(),
            })
        })
        .collect()
}

/// The package DISM removes for `kb`: one named after the KB, else the installed cumulative
/// update (`RollupFix`) of the highest build, the one the deployment just installed.
pub fn dism_package_for(packages: &[DismPackage], kb: &str) -> Option<String> {
    let number = kb.trim_start_matches("KB");
    let installed = |p: &&DismPackage| p.state.eq_ignore_ascii_case("Installed");
    if let Some(p) = packages.iter().filter(installed).find(|p| p.identity.contains(&format!("KB{number}"))) {
        return Some(p.identity.clone());
    }
    let build = |id: &str| -> Vec<u32> {
        id.rsplit("~~").next().unwrap_or("").split('.').filter_map(|n| n.parse().ok()).collect()
    };
    packages
        .iter()
        .filter(installed)
        .filter(|p| p.identity.starts_with("Package_for_RollupFix"))
        .max_by_key(|p| build(&p.identity))
        .map(|p| p.identity.clone())
}

pub fn dism_remove_command(identity: &str) -> Vec<String> {
    ["dism.exe", "/Online", "/Remove-Package", &format!("/PackageName:{identity}"), "/Quiet", "/NoRestart"]
        .map(String::from)
        .to_vec()
}

pub const OS_UNINSTALL_WINDOW: [&str; 3] = ["dism.exe", "/Online", "/Get-OSUninstallWindow"];
pub const OS_UNINSTALL: [&str; 4] = ["dism.exe", "/Online", "/Initiate-OSUninstall", "/Quiet"];

/// Days left to go back to the previous Windows, from `/Get-OSUninstallWindow`; an error
/// (the previous version was removed, or the window has passed) says why not.
pub fn parse_uninstall_window(text: &str) -> Result<u32, String> {
    if let Some(days) = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("Uninstall Window").then(|| v.trim().parse::<u32>().ok())?
    }) {
        return Ok(days);
    }
    let error =
        text.lines().map(str::trim).find(|l| l.starts_with("Error:")).unwrap_or("no uninstall window");
    Err(format!(
        "no rollback available: the previous Windows version is gone ({error}); restore from a backup instead"
    ))
}

/// One driver package of `pnputil /enum-drivers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriverPackage {
    pub published_name: String,
    pub original_name: String,
    pub provider: String,
    pub class: String,
    /// `MM/DD/YYYY`
    pub date: String,
    pub version: String,
}

pub const PNPUTIL_DRIVERS: [&str; 2] = ["pnputil.exe", "/enum-drivers"];

pub fn parse_pnputil_drivers(text: &str) -> Vec<DriverPackage> {
    let mut out = Vec::new();
    let mut cur = DriverPackage::default();
    let flush = |cur: &mut DriverPackage, out: &mut Vec<DriverPackage>| {
        if !cur.published_name.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim().to_string();
        match k.trim() {
            "Published Name" => {
                flush(&mut cur, &mut out);
                cur.published_name = v;
            }
            "Original Name" => cur.original_name = v,
            "Provider Name" => cur.provider = v,
            "Class Name" => cur.class = v,
            "Driver Version" => {
                let mut parts = v.split_whitespace();
                cur.date = parts.next().unwrap_or("").to_string();
                cur.version = parts.next().unwrap_or("").to_string();
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').filter_map(|n| n.parse().ok()).collect()
}

/// The driver package to remove so the previous one of the same INF serves again: the
/// newest of `inf`, when an older one is still in the store.
pub fn driver_to_remove(drivers: &[DriverPackage], inf: &str) -> Result<String, String> {
    let mut mine: Vec<&DriverPackage> =
        drivers.iter().filter(|d| d.original_name.eq_ignore_ascii_case(inf)).collect();
    mine.sort_by_key(|d| version_key(&d.version));
    match mine.as_slice() {
        [] => Err(format!("no driver package of {inf} is in the driver store")),
        [only] => Err(format!(
            "no rollback available: {inf} {} is the only package of it in the driver store",
            only.version
        )),
        [.., newest] => Ok(newest.published_name.clone()),
    }
}

pub fn pnputil_delete_command(published_name: &str) -> Vec<String> {
    ["pnputil.exe", "/delete-driver", published_name, "/uninstall", "/force"].map(String::from).to_vec()
}

/// Drivers as inventory items: provider, class and INF, at their version.
pub fn driver_items(drivers: &[DriverPackage]) -> Vec<ringfence_inventory::Item> {
    let mut items: Vec<ringfence_inventory::Item> = drivers
        .iter()
        .map(|d| {
            let mut i = ringfence_inventory::Item::new(
                ringfence_inventory::ItemKind::Driver,
                format!("{} {} ({})", d.provider, d.class, d.original_name),
                d.version.clone(),
            );
            i.vendor = Some(d.provider.clone()).filter(|p| !p.is_empty());
            i.manager = Some("pnputil".into());
            i
        })
        .collect();
    items.sort();
    items.dedup();
    items
}

/// Undoes one Windows update by the kind its rollback job names.
fn undo_windows_update(p: &PackageVersion, timeout: Duration, run: &mut PackageRun) -> Result<(), String> {
    let output = |cmd: &[String], run: &mut PackageRun| -> Result<crate::exec::CommandRun, String> {
        let r = run_command(cmd, &[], timeout)?;
        append_log(&mut run.log, &r.output);
        Ok(r)
    };
    let strings = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match p.version.as_str() {
        "uninstall" => {
            let r = output(&wusa_uninstall_command(&p.name), run)?;
            match wusa_outcome(r.code) {
                // The restart is the job's (inside the window), whichever tool asked for it.
                Ok(_) => Ok(()),
                Err(WusaRefusal::NotInstalled) => Ok(()),
                Err(WusaRefusal::Failed(why)) => {
                    let listed = output(&strings(&DISM_PACKAGES), run)?;
                    let identity = dism_package_for(&parse_dism_packages(&listed.output), &p.name)
                        .ok_or_else(|| {
                            format!("{why}, and DISM lists no installed package for {}", p.name)
                        })?;
                    let r = output(&dism_remove_command(&identity), run)?;
                    match r.code {
                        Some(0) | Some(3010) => Ok(()),
                        c => Err(format!("DISM could not remove {identity}: exit {c:?}")),
                    }
                }
            }
        }
        "os_uninstall" => {
            let r = output(&strings(&OS_UNINSTALL_WINDOW), run)?;
            parse_uninstall_window(&r.output)?;
            let r = output(&strings(&OS_UNINSTALL), run)?;
            if r.code == Some(0) {
                Ok(())
            } else {
                Err(format!("DISM /Initiate-OSUninstall exited {:?}", r.code))
            }
        }
        "previous_driver" => {
            let r = output(&strings(&PNPUTIL_DRIVERS), run)?;
            let remove = driver_to_remove(&parse_pnputil_drivers(&r.output), &p.name)?;
            let r = output(&pnputil_delete_command(&remove), run)?;
            if r.code == Some(0) {
                Ok(())
            } else {
                Err(format!("pnputil could not remove {remove}: exit {:?}", r.code))
            }
        }
        "none" => Err(format!(
            "no rollback available for {}: servicing stack and definition updates cannot be removed",
            p.name
        )),
        other => Err(format!("unknown way to undo a Windows update: '{other}'")),
    }
}

/// Installs the packages (Windows only; see the module comment).
pub fn apply(packages: &[PackageVersion], rollback: bool) -> PackageRun {
    let mut run = PackageRun::default();
    let timeout = Duration::from_secs(3 * 3600);
    let fail = |run: &mut PackageRun, d: String| {
        if run.failure.is_none() {
            run.failure = Some(Failure::new("install", d));
        }
    };
    let kbs: Vec<&str> =
        packages.iter().filter(|p| p.manager == "windows_update").map(|p| p.name.as_str()).collect();
    if rollback {
        for p in packages.iter().filter(|p| p.manager == "windows_update") {
            let undone = undo_windows_update(p, timeout, &mut run);
            if let Err(e) = &undone {
                fail(&mut run, e.clone());
            }
            run.installed.push(PackageVersion {
                version: if undone.is_ok() { "removed".into() } else { String::new() },
                ..p.clone()
            });
        }
    } else if !kbs.is_empty() {
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

    // Recorded on Windows 11 23H2 (DISM 10.0.22621, pnputil of the same build).
    const DISM_TABLE: &str = "\r\nDeployment Image Servicing and Management tool\r\nVersion: 10.0.22621.2792\r\n\r\nImage Version: 10.0.22631.3155\r\n\r\nPackages listing:\r\n\r\n------------------------------------------------------------------------------------ | ---------- | --------------- | -----------------\r\nPackage Identity                                                                     | State      | Release Type    | Install Time\r\n------------------------------------------------------------------------------------ | ---------- | --------------- | -----------------\r\nPackage_for_DotNetRollup_481~31bf3856ad364e35~amd64~~10.0.9214.1                     | Installed  | Security Update | 2/14/2024 3:12 AM\r\nPackage_for_RollupFix~31bf3856ad364e35~amd64~~22621.3007.1.7                        | Superseded | Security Update | 1/10/2024 2:05 AM\r\nPackage_for_RollupFix~31bf3856ad364e35~amd64~~22621.3155.1.4                        | Installed  | Security Update | 2/14/2024 3:20 AM\r\nPackage_for_ServicingStack_3140~31bf3856ad364e35~amd64~~22621.3140.1.3               | Installed  | Update          | 2/14/2024 3:01 AM\r\nPackage_for_KB5034467~31bf3856ad364e35~amd64~~22621.3140.1.1                         | Installed  | Update          | 2/14/2024 3:02 AM\r\n\r\nThe operation completed successfully.\r\n";

    #[test]
    fn quality_updates_are_removed_by_wusa_or_else_by_dism() {
        assert_eq!(
            wusa_uninstall_command("KB5034765"),
            ["wusa.exe", "/uninstall", "/kb:5034765", "/quiet", "/norestart"]
        );
        assert_eq!(wusa_outcome(Some(0)), Ok(false));
        assert_eq!(wusa_outcome(Some(3010)), Ok(true), "removed; a restart finishes it");
        assert_eq!(wusa_outcome(Some(2359303)), Err(WusaRefusal::NotInstalled));
        assert_eq!(
            wusa_outcome(Some(-2147024809)),
            Err(WusaRefusal::Failed("wusa exited with 0x80070057".into())),
            "combined packages refuse wusa"
        );
        let packages = parse_dism_packages(DISM_TABLE);
        assert_eq!(packages.len(), 5);
        assert_eq!(packages[1].state, "Superseded");
        // A package named after the KB is that update; a cumulative update is the newest
        // installed RollupFix, never a superseded one.
        assert_eq!(
            dism_package_for(&packages, "KB5034467").as_deref(),
            Some("Package_for_KB5034467~31bf3856ad364e35~amd64~~22621.3140.1.1")
        );
        assert_eq!(
            dism_package_for(&packages, "KB5034765").as_deref(),
            Some("Package_for_RollupFix~31bf3856ad364e35~amd64~~22621.3155.1.4")
        );
        assert_eq!(
            dism_package_for(&parse_dism_packages("The operation completed successfully."), "KB1"),
            None
        );
        assert_eq!(
            dism_remove_command("Package_for_RollupFix~31bf3856ad364e35~amd64~~22621.3155.1.4")[3],
            "/PackageName:Package_for_RollupFix~31bf3856ad364e35~amd64~~22621.3155.1.4"
        );
    }

    #[test]
    fn feature_updates_roll_back_only_inside_the_uninstall_window() {
        let open = "Deployment Image Servicing and Management tool\r\nVersion: 10.0.26100.1\r\n\r\nImage Version: 10.0.26100.1742\r\n\r\nUninstall Window : 10\r\n\r\nThe operation completed successfully.\r\n";
        assert_eq!(parse_uninstall_window(open), Ok(10));
        let gone = "Deployment Image Servicing and Management tool\r\nVersion: 10.0.26100.1\r\n\r\nImage Version: 10.0.26100.1742\r\n\r\nError: 1168\r\n\r\nElement not found.\r\n\r\nThe DISM log file can be found at C:\\Windows\\Logs\\DISM\\dism.log\r\n";
        let e = parse_uninstall_window(gone).unwrap_err();
        assert!(e.starts_with("no rollback available") && e.contains("Error: 1168"), "{e}");
        assert_eq!(OS_UNINSTALL, ["dism.exe", "/Online", "/Initiate-OSUninstall", "/Quiet"]);
    }

    const PNPUTIL: &str = "Microsoft PnP Utility\r\n\r\nPublished Name:     oem12.inf\r\nOriginal Name:      e1d68x64.inf\r\nProvider Name:      Intel\r\nClass Name:         Network adapters\r\nClass GUID:         {4d36e972-e325-11ce-bfc1-08002be10318}\r\nDriver Version:     08/15/2023 12.19.1.37\r\nSigner Name:        Microsoft Windows Hardware Compatibility Publisher\r\n\r\nPublished Name:     oem31.inf\r\nOriginal Name:      e1d68x64.inf\r\nProvider Name:      Intel\r\nClass Name:         Network adapters\r\nClass GUID:         {4d36e972-e325-11ce-bfc1-08002be10318}\r\nDriver Version:     03/02/2024 12.19.2.45\r\nSigner Name:        Microsoft Windows Hardware Compatibility Publisher\r\n\r\nPublished Name:     oem7.inf\r\nOriginal Name:      iigd_dch.inf\r\nProvider Name:      Intel Corporation\r\nClass Name:         Display adapters\r\nClass GUID:         {4d36e968-e325-11ce-bfc1-08002be10318}\r\nDriver Version:     01/19/2024 31.0.101.5333\r\nSigner Name:        Microsoft Windows Hardware Compatibility Publisher\r\n\r\n";

    #[test]
    fn drivers_roll_back_to_the_previous_package_in_the_store() {
        let drivers = parse_pnputil_drivers(PNPUTIL);
        assert_eq!(drivers.len(), 3);
        assert_eq!(
            (drivers[1].provider.as_str(), drivers[1].date.as_str(), drivers[1].version.as_str()),
            ("Intel", "03/02/2024", "12.19.2.45")
        );
        assert_eq!(driver_to_remove(&drivers, "E1D68X64.inf"), Ok("oem31.inf".into()), "the newest goes");
        let e = driver_to_remove(&drivers, "iigd_dch.inf").unwrap_err();
        assert!(e.starts_with("no rollback available") && e.contains("only package"), "{e}");
        assert!(driver_to_remove(&drivers, "missing.inf").unwrap_err().contains("no driver package"));
        assert_eq!(
            pnputil_delete_command("oem31.inf"),
            ["pnputil.exe", "/delete-driver", "oem31.inf", "/uninstall", "/force"]
        );
        let items = driver_items(&drivers);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].kind, ringfence_inventory::ItemKind::Driver);
        assert!(
            items.iter().any(|i| i.name == "Intel Corporation Display adapters (iigd_dch.inf)"
                && i.version == "31.0.101.5333")
        );
    }

    #[test]
    fn updates_without_a_rollback_say_so() {
        let p = PackageVersion {
            manager: "windows_update".into(),
            name: "KB5034863".into(),
            version: "none".into(),
        };
        let mut run = PackageRun::default();
        let e = undo_windows_update(&p, Duration::from_secs(1), &mut run).unwrap_err();
        assert!(e.contains("no rollback available for KB5034863"), "{e}");
        let p = PackageVersion { version: "reinstall".into(), ..p };
        assert!(
            undo_windows_update(&p, Duration::from_secs(1), &mut run).unwrap_err().contains("unknown way")
        );
    }
}
