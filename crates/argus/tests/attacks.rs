//! One test per attack type, mounted against a running Argus with the demo (issue 6, "How it must be shown"):
//! through the real login form and the real gate, with benign people signed in and working from their own
//! addresses at the same time. Each checks the alert and its explanation through the watch API (admin token), the
//! configured response taking effect at the login form or the gate, and that no benign person, address, session,
//! token or app was alerted on. Every part of Argus reads one fake clock, so slow attacks (hours of guessing,
//! baselines learned over minutes) take no wall time.

#[path = "attacks/api.rs"]
mod api;
#[path = "attacks/false_alarm.rs"]
mod false_alarm;
#[path = "attacks/harness.rs"]
mod harness;
#[path = "attacks/login.rs"]
mod login;
