//! Walking a paged list one page at a time, so a caller can filter each
//! page before the next is fetched; bounded in pages, and stopped at a
//! `next` link it has already followed, since a broken or hostile API
//! could otherwise keep a run going (and growing) for ever.

use std::collections::HashSet;
use std::marker::PhantomData;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::{ApiError, Client, Items, decode};

/// The most pages one list may take. At the 1000 items a page asked for,
/// that is 100 million rooms, members or events: far past any org (a
/// room holds at most a few thousand members), so only an API that keeps
/// handing out fresh cursors gets here.
pub const MAX_PAGES: usize = 100_000;

/// The pages of one list, fetched as they are asked for.
pub struct Pages<T> {
    client: Client,
    next: Option<Url>,
    /// Every page asked for so far: a link back to one is a loop.
    followed: HashSet<Url>,
    /// For messages.
    path: String,
    /// What an error of this list means to its caller.
    explain: fn(ApiError) -> ApiError,
    _items: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Pages<T> {
    pub(super) fn new(client: Client, first: Url, path: &str) -> Self {
        Self {
            client,
            followed: HashSet::from([first.clone()]),
            next: Some(first),
            path: path.to_string(),
            explain: |error| error,
            _items: PhantomData,
        }
    }

    /// Errors of this list pass through `explain` first.
    pub(super) fn explained(mut self, explain: fn(ApiError) -> ApiError) -> Self {
        self.explain = explain;
        self
    }

    /// The next page's items; `None` after the last page.
    pub async fn next(&mut self) -> Result<Option<Vec<T>>, ApiError> {
        self.fetch().await.map_err(self.explain)
    }

    /// Every item of every page.
    pub async fn all(mut self) -> Result<Vec<T>, ApiError> {
        let mut all = Vec::new();
        while let Some(items) = self.next().await? {
            all.extend(items);
        }
        Ok(all)
    }

    async fn fetch(&mut self) -> Result<Option<Vec<T>>, ApiError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let response = self.client.send(Method::GET, &url, None).await?;
        let next = self.client.next_page(&url, response.headers())?;
        let page: Items<T> = decode(response, &self.path).await?;
        if let Some(next) = &next {
            if self.followed.len() >= MAX_PAGES {
                return Err(ApiError::TooManyPages {
                    path: self.path.clone(),
                    pages: MAX_PAGES,
                });
            }
            if !self.followed.insert(next.clone()) {
                return Err(ApiError::RepeatedNextPage {
                    path: self.path.clone(),
                    link: next.to_string(),
                });
            }
        }
        self.next = next;
        Ok(Some(page.items))
    }
}
