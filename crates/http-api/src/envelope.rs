//! The success envelope and the pagination object.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"success": true, "message": "...", "data": ...}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// Always true.
    pub success: bool,
    /// A short description of what was done.
    pub message: String,
    /// The payload.
    pub data: T,
}

impl<T> Envelope<T> {
    /// Wraps `data`.
    pub fn new(message: impl Into<String>, data: T) -> Self {
        Self {
            success: true,
            message: message.into(),
            data,
        }
    }
}

/// One page of a list; the same shape for every list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items match in all.
    pub total: i64,
    /// This page, from 1.
    pub page: i64,
    /// How many pages there are (at least 1).
    pub pages: i64,
    /// Items per page.
    pub limit: i64,
    /// Whether a previous page exists.
    pub has_prev: bool,
    /// Whether a next page exists.
    pub has_next: bool,
    /// With `get_all=true` only: whether rows were left out (more than the cap match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

impl<T> Paginated<T> {
    /// A page of `items` out of `total`.
    pub fn new(items: Vec<T>, total: i64, page: i64, limit: i64) -> Self {
        let pages = ((total + limit - 1) / limit).max(1);
        Self {
            items,
            total,
            page,
            pages,
            limit,
            has_prev: page > 1,
            has_next: page < pages,
            truncated: None,
        }
    }

    /// Every row at once (`get_all=true`): one page of `items` out of `total` matching rows,
    /// truncated when `total` is more.
    pub fn everything(items: Vec<T>, total: i64) -> Self {
        let shown = items.len() as i64;
        Self {
            items,
            total,
            page: 1,
            pages: 1,
            limit: shown.max(1),
            has_prev: false,
            has_next: false,
            truncated: Some(total > shown),
        }
    }
}
