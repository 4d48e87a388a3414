//! Ctrl-C and SIGTERM for commands that must tidy up before they exit: the node stops
//! cleanly, the demo removes its darknet, a fetch removes its part file and says that the
//! job goes on in the node.

/// Resolves at Ctrl-C or SIGTERM.
pub(crate) async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// From now on, Ctrl-C or SIGTERM runs `tidy` on a thread of its own and then exits with
/// status 130 (the shell's code for an interrupted command).
pub(crate) fn on_interrupt(tidy: impl FnOnce() + Send + 'static) {
    let (installed, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            // The handlers are installed on the first poll: say so only after it, so that
            // a signal arriving once this function returned is always caught.
            let wait = signalled();
            tokio::pin!(wait);
            tokio::select! {
                biased;
                _ = &mut wait => {}
                _ = std::future::ready(()) => {
                    let _ = installed.send(());
                    wait.await;
                }
            }
        });
        tidy();
        std::process::exit(130);
    });
    // Without a runtime (should not happen) the default action, exit, still applies.
    let _ = ready.recv_timeout(std::time::Duration::from_secs(2));
}
