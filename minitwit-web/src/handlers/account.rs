//! `GET|POST /register`, `GET|POST /login`, `GET /logout`: accounts and sign-in, with
//! the contract's texts and login throttling.

use super::Handled;
use crate::idempotency::{KeyedRequest, redirect_after};
use crate::site::{Site, Title, Visit};
use crate::views::{LoginView, RegisterView};
use minitwit_core::{Registration, ServiceError};
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use warp::http::StatusCode;
use warp::http::header::{HeaderValue, RETRY_AFTER};

/// The sign-up form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RegisterForm {
    username: String,
    email: String,
    password: String,
    password2: String,
}

/// The sign-in form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
}

fn register_page(site: &Site, visit: Visit, error: Option<&str>, form: &RegisterForm) -> Handled {
    let view = RegisterView { error, username: &form.username, email: &form.email };
    Ok(site.page(visit, StatusCode::OK, Title::Fixed("Sign Up"), "register", &view))
}

/// The page for a registration refused by the throttle: 429 with `Retry-After`.
fn register_throttled(site: &Site, visit: Visit, wait: Duration, form: &RegisterForm) -> Handled {
    let seconds = wait.as_secs() + 1;
    let error =
        format!("Too many sign-ups from your address. Please wait {seconds} s and try again.");
    let view = RegisterView { error: Some(&error), username: &form.username, email: &form.email };
    let status = StatusCode::TOO_MANY_REQUESTS;
    let mut response = site.page(visit, status, Title::Fixed("Sign Up"), "register", &view);
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    Ok(response)
}

fn login_page(
    site: &Site,
    visit: Visit,
    status: StatusCode,
    error: Option<&str>,
    name: &str,
) -> Handled {
    let view = LoginView { error, username: name };
    Ok(site.page(visit, status, Title::Fixed("Sign In"), "login", &view))
}

/// `GET /register`: the form; signed-in users go to `/`.
pub(crate) async fn register_form(site: Arc<Site>, visit: Visit) -> Handled {
    if visit.user.is_some() {
        return Ok(site.redirect(visit, "/"));
    }
    register_page(&site, visit, None, &RegisterForm::default())
}

/// `POST /register`: the first error in contract order, or the account and a redirect to
/// `/login`. A valid registration (which costs a password hash) is throttled per client
/// address.
pub(crate) async fn register(
    site: Arc<Site>,
    form: RegisterForm,
    request: Option<KeyedRequest>,
    client: Option<IpAddr>,
    visit: Visit,
) -> Handled {
    const REGISTERED: &str = "You were successfully registered and can login now";
    if visit.user.is_some() {
        return Ok(site.redirect(visit, "/"));
    }
    let parsed =
        Registration::parse(&form.username, &form.email, &form.password, Some(&form.password2));
    if parsed.is_ok()
        && let Err(wait) = site.throttle.register(client)
    {
        return register_throttled(&site, visit, wait, &form);
    }
    let keyed = request.map(|request| request.keyed(None, "/login", REGISTERED));
    let result = match parsed {
        Ok(registration) => visit.service.register_once(registration, keyed).await,
        Err(invalid) => Err(invalid.into()),
    };
    match result {
        Ok(outcome) => Ok(redirect_after(&site, visit, outcome, "/login", REGISTERED)),
        Err(refused @ (ServiceError::Invalid(_) | ServiceError::UsernameTaken)) => {
            register_page(&site, visit, Some(&refused.to_string()), &form)
        }
        Err(other) => Err(other.into()),
    }
}

/// `GET /login`: the form; signed-in users go to `/`.
pub(crate) async fn login_form(site: Arc<Site>, visit: Visit) -> Handled {
    if visit.user.is_some() {
        return Ok(site.redirect(visit, "/"));
    }
    login_page(&site, visit, StatusCode::OK, None, "")
}

/// The page for a throttled attempt: 429 with `Retry-After`.
fn throttled(site: &Site, visit: Visit, wait: Duration, name: &str) -> Handled {
    let seconds = wait.as_secs() + 1;
    let error = format!(
        "Too many sign-in attempts. Please wait {seconds} second{} and try again.",
        if seconds == 1 { "" } else { "s" }
    );
    let mut response = login_page(site, visit, StatusCode::TOO_MANY_REQUESTS, Some(&error), name)?;
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    Ok(response)
}

/// `POST /login`: throttled per account and address; "Invalid username" / "Invalid
/// password", or the session and a redirect to `/`.
pub(crate) async fn login(
    site: Arc<Site>,
    form: LoginForm,
    client: Option<IpAddr>,
    mut visit: Visit,
) -> Handled {
    if visit.user.is_some() {
        return Ok(site.redirect(visit, "/"));
    }
    if let Err(wait) = site.throttle.login(&form.username, client) {
        return throttled(&site, visit, wait, &form.username);
    }
    match visit.service.authenticate(&form.username, &form.password).await {
        Ok(user) => {
            let generation = site.service.session_generation(user.id).await?;
            visit.session.sign_in(&user, generation);
            visit.session.flash("You were logged in");
            Ok(site.redirect(visit, "/"))
        }
        Err(
            refused @ (ServiceError::InvalidUsername
            | ServiceError::InvalidPassword
            | ServiceError::AccountDisabled),
        ) => login_page(&site, visit, StatusCode::OK, Some(&refused.to_string()), &form.username),
        Err(other) => Err(other.into()),
    }
}

/// `GET /logout`: signs out and redirects to `/public`.
pub(crate) async fn logout(site: Arc<Site>, mut visit: Visit) -> Handled {
    visit.session.sign_out();
    visit.session.flash("You were logged out");
    Ok(site.redirect(visit, "/public"))
}
