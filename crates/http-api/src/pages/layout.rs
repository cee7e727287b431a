//! The frame every page shares: head, skip link, navigation, the signed-in user.

use maud::{DOCTYPE, Markup, html};

use super::assets;
use crate::auth::Caller;

/// Which page is shown: its title, its script module and its place in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The sign-in form.
    Login,
    /// Instance capacity.
    Instances,
    /// Database capacity.
    Databases,
    /// Run history and run details.
    Sessions,
    /// Schedules.
    Scheduler,
    /// Alert events and rules.
    Alerts,
    /// A page that could not be built.
    Error,
}

impl Section {
    /// The page title (before " · capstats").
    fn title(self) -> &'static str {
        match self {
            Section::Login => "Sign in",
            Section::Instances => "Instance capacity",
            Section::Databases => "Database capacity",
            Section::Sessions => "Sync sessions",
            Section::Scheduler => "Scheduler",
            Section::Alerts => "Alerts",
            Section::Error => "Error",
        }
    }

    /// The script module the bundle runs for this page (`data-page`).
    fn script(self) -> &'static str {
        match self {
            Section::Login => "login",
            Section::Instances => "capacity-instances",
            Section::Databases => "capacity-databases",
            Section::Sessions => "sync-sessions",
            Section::Scheduler => "scheduler",
            Section::Alerts => "alerts",
            Section::Error => "error",
        }
    }
}

/// The navigation: path, label, section.
const NAVIGATION: [(&str, &str, Section); 5] = [
    ("/capacity/instances", "Instances", Section::Instances),
    ("/capacity/databases", "Databases", Section::Databases),
    ("/sync-sessions", "Sync sessions", Section::Sessions),
    ("/scheduler", "Scheduler", Section::Scheduler),
    ("/alerts", "Alerts", Section::Alerts),
];

/// A whole page. `signed_in` carries the user and the session's CSRF token, which the
/// script sends with writes.
pub fn page(section: Section, signed_in: Option<(&Caller, &str)>, main: Markup) -> Markup {
    let version = assets::version();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (section.title()) " · capstats" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href={ "/assets/app.css?v=" (version) };
                @if let Some((_, csrf)) = signed_in {
                    meta name="csrf-token" content=(csrf);
                }
                script type="module" src={ "/assets/app.js?v=" (version) } {}
            }
            body data-page=(section.script())
                data-role=[signed_in.map(|(caller, _)| caller.user.role.as_str())] {
                a.skip-link href="#main" { "Skip to content" }
                header.top-bar {
                    a.brand href="/" { "capstats" }
                    @if let Some((caller, _)) = signed_in {
                        nav aria-label="Main" {
                            ul {
                                @for (path, label, target) in NAVIGATION {
                                    li {
                                        a href=(path) aria-current=[(target == section).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                        div.account {
                            span.user { (caller.user.username) " " span.role { "(" (caller.user.role) ")" } }
                            button.secondary type="button" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (main)
                }
            }
        }
    }
}
