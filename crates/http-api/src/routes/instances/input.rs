//! Checks of an instance body, and what a request does to the stored collector password.

use actix_web::HttpRequest;

use capstats_capacity_model::{DbType, InstanceId, TlsMode};
use capstats_collectors::credentials::CredentialKey;
use capstats_store::instances::InstanceChanges;

use crate::dto::InstanceInput;
use crate::error::{ApiError, FieldError};

/// What a request does to the stored collector password.
pub(super) enum PasswordChange {
    /// Leaves it (unless the store drops it because the target changed).
    Keep,
    /// Removes it.
    Clear,
    /// Replaces it with this password, sealed for the instance once its id is known.
    Set(String),
}

impl PasswordChange {
    /// What the audit trail records of it (never the password).
    pub(super) fn audit_word(&self) -> &'static str {
        match self {
            Self::Keep => "kept",
            Self::Clear => "cleared",
            Self::Set(_) => "set",
        }
    }
}

/// Records in the request's audit event what happened to the stored collector password.
pub(super) fn note_password(request: &HttpRequest, outcome: &'static str) {
    crate::audit::note(request, |note| {
        note.detail
            .insert("connection_password".into(), outcome.into());
    });
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password itself.
        formatter.write_str(match self {
            Self::Keep => "Keep",
            Self::Clear => "Clear",
            Self::Set(_) => "Set(..)",
        })
    }
}

impl PasswordChange {
    /// The store's form for `instance`: sealed with `key` and bound to the instance's id, so
    /// that the sealed value opens for this instance only.
    pub(super) fn sealed_for(
        &self,
        instance: InstanceId,
        key: &CredentialKey,
    ) -> Option<Option<Vec<u8>>> {
        match self {
            Self::Keep => None,
            Self::Clear => Some(None),
            Self::Set(password) => Some(Some(key.seal(instance, password))),
        }
    }
}

/// Checks an instance body; `creating` requires the name and engine.
pub(super) fn read_input(
    input: InstanceInput,
    creating: bool,
    key: Option<&CredentialKey>,
) -> Result<(InstanceChanges, PasswordChange), ApiError> {
    let mut problems = Vec::new();
    let name = input.name.map(|name| name.trim().to_owned());
    match &name {
        None if creating => problems.push(FieldError::new("name", "required", "is required")),
        Some(name) if name.is_empty() || name.chars().count() > 255 => {
            problems.push(FieldError::new(
                "name",
                "invalid",
                "must have 1 to 255 characters",
            ));
        }
        _ => {}
    }
    let db_type = match input.db_type.as_deref() {
        None if creating => {
            problems.push(FieldError::new("db_type", "required", "is required"));
            None
        }
        None => None,
        Some(text) => match text.parse::<DbType>() {
            Ok(db_type) => Some(db_type),
            Err(error) => {
                problems.push(error.into());
                None
            }
        },
    };
    if let Some(port) = input.port
        && !(1..=65535).contains(&port)
    {
        problems.push(FieldError::new(
            "port",
            "out_of_range",
            "must be between 1 and 65535",
        ));
    }
    for (field, value) in [
        ("connection_user", &input.connection_user),
        ("connection_database", &input.connection_database),
    ] {
        if value
            .as_ref()
            .is_some_and(|value| value.chars().count() > 255)
        {
            problems.push(FieldError::new(
                field,
                "too_long",
                "must have at most 255 characters",
            ));
        }
    }
    // Control and bidi characters in names end up in logs, CSV exports and the UI.
    for (field, value) in [
        ("name", &name),
        ("host", &input.host),
        ("description", &input.description),
        ("connection_user", &input.connection_user),
        ("connection_database", &input.connection_database),
    ] {
        if let Some(Err(error)) = value
            .as_deref()
            .map(|value| capstats_capacity_model::validate_plain_text(field, value))
        {
            problems.push(error.into());
        }
    }
    let tls_mode = match input.tls_mode.as_deref() {
        None => None,
        Some(text) => match text.parse::<TlsMode>() {
            Ok(mode) => Some(mode),
            Err(error) => {
                problems.push(error.into());
                None
            }
        },
    };
    if let Some(Some(limit)) = input.capacity_limit_mb
        && limit < 1
    {
        problems.push(capacity_limit_problem(limit));
    }
    // An empty password clears the stored one; any other needs the key to be sealed.
    let password = match input.connection_password {
        None => PasswordChange::Keep,
        Some(password) if password.is_empty() => PasswordChange::Clear,
        Some(password) => {
            if key.is_none() {
                problems.push(FieldError::new(
                    "connection_password",
                    "unavailable",
                    "cannot store a password: the server has no CAPSTATS_CREDENTIAL_KEY",
                ));
            }
            PasswordChange::Set(password)
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let text = |value: Option<String>| {
        value.map(|value| Some(value.trim().to_owned()).filter(|value| !value.is_empty()))
    };
    let changes = InstanceChanges {
        name,
        db_type,
        host: text(input.host),
        port: input.port.map(Some),
        description: text(input.description),
        connection_user: text(input.connection_user),
        // Sealed once the instance id is known (see `PasswordChange::sealed_for`).
        connection_password: None,
        connection_database: text(input.connection_database),
        tls_mode,
        is_active: input.is_active,
        capacity_limit_mb: input.capacity_limit_mb,
    };
    Ok((changes, password))
}

/// A capacity limit below 1 MB.
pub(super) fn capacity_limit_problem(limit: i64) -> FieldError {
    FieldError::new(
        "capacity_limit_mb",
        "out_of_range",
        format!("{limit} is not a size: a limit is at least 1 MB (null removes it)"),
    )
}
