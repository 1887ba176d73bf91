//! The agent as a Windows service (`ringfence-agent.exe service install|uninstall|run`),
//! running as LocalSystem with its credential and spool in `%ProgramData%\ringfence`,
//! which only SYSTEM and Administrators may read.
//!
//! An MSI install (`msiexec /i ringfence-agent.msi /qn SERVER_URL=… ENROLL_TOKEN=…`)
//! leaves the server and token under `HKLM\SOFTWARE\ringfence\Agent`; the service enrolls
//! with them on its first start and then forgets the token.

/// The service's name for `sc.exe` and the Services console.
pub const SERVICE_NAME: &str = "ringfence-agent";
pub const DISPLAY_NAME: &str = "ringfence agent";
pub const DESCRIPTION: &str = "Reports this computer's software to the MSP's ringfence server and installs the \
     updates it approves, inside the maintenance window.";

/// The `icacls` arguments that leave a folder to SYSTEM and Administrators alone (no
/// inherited entries, full control for both, for the folder and everything below it).
pub fn private_folder_acl(dir: &str) -> Vec<String> {
    vec![
        dir.to_string(),
        "/inheritance:r".into(),
        "/grant:r".into(),
        "*S-1-5-18:(OI)(CI)F".into(),
        "/grant:r".into(),
        "*S-1-5-32-544:(OI)(CI)F".into(),
    ]
}

#[cfg(windows)]
mod native {
    use super::*;
    use std::ffi::{OsStr, OsString};
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;
    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    /// Makes `dir` private to SYSTEM and Administrators.
    pub fn protect(dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let out = std::process::Command::new("icacls")
            .args(private_folder_acl(&dir.display().to_string()))
            .output()
            .map_err(|e| format!("cannot run icacls: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "icacls could not restrict {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Registers the service (automatic start, LocalSystem) and starts it.
    pub fn install(config_dir: &Path) -> Result<(), String> {
        protect(config_dir)?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .map_err(|e| format!("cannot open the service manager (run as Administrator): {e}"))?;
        let info = ServiceInfo {
            name: OsString::from(SERVICE_NAME),
            display_name: OsString::from(DISPLAY_NAME),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: exe,
            launch_arguments: vec![
                OsString::from("service"),
                OsString::from("run"),
                OsString::from("--config-dir"),
                config_dir.as_os_str().to_owned(),
            ],
            dependencies: vec![],
            account_name: None,
            account_password: None,
        };
        let service = manager
            .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::START)
            .map_err(|e| format!("cannot create the service {SERVICE_NAME}: {e}"))?;
        let _ = service.set_description(DESCRIPTION);
        service.start(&[] as &[&OsStr]).map_err(|e| format!("the service was created but did not start: {e}"))
    }

    /// Stops and removes the service. The configuration folder stays (re-installing keeps
    /// the enrollment).
    pub fn uninstall() -> Result<(), String> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .map_err(|e| format!("cannot open the service manager (run as Administrator): {e}"))?;
        let service = manager
            .open_service(
                SERVICE_NAME,
                ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
            )
            .map_err(|e| format!("the service {SERVICE_NAME} is not installed: {e}"))?;
        if service.query_status().map(|s| s.current_state != ServiceState::Stopped).unwrap_or(false) {
            let _ = service.stop();
        }
        service.delete().map_err(|e| format!("cannot delete the service: {e}"))
    }

    type Body = Box<dyn FnOnce() + Send>;
    static BODY: std::sync::Mutex<Option<Body>> = std::sync::Mutex::new(None);

    define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<OsString>) {
        let (stop_tx, stop_rx) = mpsc::channel();
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                let _ = stop_tx.send(());
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let Ok(status) = service_control_handler::register(SERVICE_NAME, handler) else { return };
        let report = |state, controls| ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: controls,
            exit_code: ServiceExitCode::Win32(0),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        };
        let _ = status.set_service_status(report(
            ServiceState::Running,
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ));
        if let Some(body) = BODY.lock().ok().and_then(|mut b| b.take()) {
            std::thread::spawn(body);
        }
        // The agent's state is on disk after every step (spool, job ledger), so stopping
        // between steps loses nothing.
        let _ = stop_rx.recv();
        // The loop stops after its step in progress; a job already running is given the
        // service manager's wait hint to finish.
        crate::stop::request();
        let _ = status.set_service_status(report(ServiceState::StopPending, ServiceControlAccept::empty()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !crate::stop::finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = status.set_service_status(report(ServiceState::Stopped, ServiceControlAccept::empty()));
    }

    /// Runs `body` as the service until the service manager stops it.
    pub fn run(body: impl FnOnce() + Send + 'static) -> Result<(), String> {
        if let Ok(mut b) = BODY.lock() {
            *b = Some(Box::new(body));
        }
        service_dispatcher::start(SERVICE_NAME, ffi_service_main)
            .map_err(|e| format!("not started by the service manager (use `service install`): {e}"))
    }
}

#[cfg(windows)]
pub use native::{install, protect, run, uninstall};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_left_to_system_and_administrators() {
        let args = private_folder_acl(r"C:\ProgramData\ringfence");
        assert_eq!(args[0], r"C:\ProgramData\ringfence");
        assert!(args.contains(&"/inheritance:r".to_string()), "inherited Users entries are removed");
        assert!(args.contains(&"*S-1-5-18:(OI)(CI)F".to_string()), "SYSTEM");
        assert!(args.contains(&"*S-1-5-32-544:(OI)(CI)F".to_string()), "Administrators");
        assert_eq!(args.iter().filter(|a| a.starts_with('*')).count(), 2, "nobody else");
    }
}
