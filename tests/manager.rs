//! The token manager's policy on a virtual clock: a base `Instant` plus
//! durations, never the real passage of time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use proptest::prelude::*;
use service_auth::error::{
    ErrorCode, ProviderError, RetryAdvice, TokenError, TransportError, TransportErrorKind,
};
use service_auth::manager::{
    Error, FetchId, FetchMismatch, Generation, RefreshPolicy, TokenManager, TokenState, Wake,
};
use service_auth::rng::Rng;
use service_auth::secret::AccessToken;
use service_auth::token::Token;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn token(received: Instant, lifetime: Option<Duration>) -> Token {
    let expires = lifetime.map(|lifetime| received + lifetime);
    Token::new(AccessToken::new("tok"), received, expires, true, None)
}

fn no_jitter() -> RefreshPolicy {
    let mut policy = RefreshPolicy::default();
    policy.jitter = 0.0;
    policy
}

fn transient() -> TokenError {
    TransportError::from_kind(TransportErrorKind::Timeout).into()
}

fn provider(code: &str, retry_after: Option<Duration>) -> TokenError {
    ProviderError {
        status: StatusCode::BAD_REQUEST,
        code: ErrorCode::parse(code),
        description: None,
        uri: None,
        retry_after,
    }
    .into()
}

/// Fetches one token of `lifetime` at `now`, which must be due.
fn fetch(manager: &mut TokenManager, now: Instant, lifetime: Option<Duration>) -> Generation {
    let id = manager.poll_fetch(now).expect("a fetch is due");
    manager
        .handle_token(id, token(now, lifetime), now)
        .expect("own fetch")
}

fn fail(manager: &mut TokenManager, now: Instant, error: TokenError) {
    let id = manager.poll_fetch(now).expect("a fetch is due");
    manager.handle_failure(id, error, now).expect("own fetch");
}

fn schedule(manager: &TokenManager) -> (Instant, Instant) {
    let cached = manager.cached().expect("a token is cached");
    (
        cached.refresh_at().expect("expires"),
        cached.serve_until().expect("expires"),
    )
}

fn served_generation(state: TokenState<'_>) -> Option<Generation> {
    match state {
        TokenState::Fresh(cached) | TokenState::RefreshDue(cached) => Some(cached.generation()),
        _ => None,
    }
}

#[test]
fn refresh_point_is_margin_before_expiry_capped_at_half_the_lifetime() {
    let t0 = Instant::now();
    for (lifetime, lead) in [
        (5 * MINUTE, MINUTE),
        (HOUR, MINUTE),
        (12 * HOUR, MINUTE),
        (MINUTE, 30 * SECOND),
        (10 * SECOND, 5 * SECOND),
    ] {
        let mut manager = TokenManager::new(no_jitter(), Rng::from_seed(1));
        fetch(&mut manager, t0, Some(lifetime));
        let (refresh_at, serve_until) = schedule(&manager);
        assert_eq!(refresh_at, t0 + lifetime - lead, "lifetime {lifetime:?}");
        let safety = (5 * SECOND).min(lifetime / 10);
        assert_eq!(serve_until, t0 + lifetime - safety, "lifetime {lifetime:?}");
    }
}

#[test]
fn jitter_stays_within_bounds_over_many_seeds() {
    let t0 = Instant::now();
    for lifetime in [5 * MINUTE, HOUR, 12 * HOUR, 90 * SECOND, 20 * SECOND] {
        let window = MINUTE.min(lifetime / 2);
        let expires = t0 + lifetime;
        let earliest = (expires - window.mul_f64(1.25)).max(t0 + lifetime / 2);
        let (mut lowest, mut highest) = (expires, t0);
        for seed in 0..2000 {
            let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(seed));
            fetch(&mut manager, t0, Some(lifetime));
            let (refresh_at, serve_until) = schedule(&manager);
            assert!(refresh_at >= earliest, "seed {seed}, lifetime {lifetime:?}");
            assert!(
                refresh_at >= t0 + lifetime / 2,
                "never before half the lifetime"
            );
            assert!(
                refresh_at <= expires - window,
                "seed {seed}, lifetime {lifetime:?}"
            );
            assert!(refresh_at <= serve_until, "never after expiry minus safety");
            lowest = lowest.min(refresh_at);
            highest = highest.max(refresh_at);
        }
        if lifetime >= 5 * MINUTE {
            // The draw spreads refreshes over most of the jitter window.
            assert!(highest - lowest > window / 5, "lifetime {lifetime:?}");
        }
    }
}

#[test]
fn token_of_unknown_lifetime_follows_the_rule_on_the_assumed_expiry() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(no_jitter(), Rng::from_seed(3));
    let id = manager.poll_fetch(t0).expect("due");
    let assumed = Token::new(
        AccessToken::new("tok"),
        t0,
        Some(t0 + 5 * MINUTE),
        false,
        None,
    );
    manager.handle_token(id, assumed, t0).expect("own fetch");
    assert_eq!(
        schedule(&manager),
        (t0 + 4 * MINUTE, t0 + 5 * MINUTE - 5 * SECOND)
    );
}

#[test]
fn personal_access_token_never_refreshes() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(4));
    let generation = fetch(&mut manager, t0, None);
    let later = t0 + 10_000 * HOUR;
    assert!(matches!(manager.token(later), TokenState::Fresh(_)));
    assert!(manager.poll_fetch(later).is_none());
    assert_eq!(manager.poll_timeout(), None);

    // Its rejection cannot be cured by a refresh: a permanent, typed error.
    assert!(manager.invalidate(generation, later));
    let TokenState::Unavailable(Error::HeldOff { last, .. }) = manager.token(later) else {
        panic!("expected a hold-off");
    };
    assert!(matches!(*last, TokenError::PersonalAccessTokenRejected));
    assert!(manager.poll_fetch(later).is_none());
    manager.reset();
    assert_eq!(fetch(&mut manager, later, None).get(), 2);
}

#[test]
fn token_is_never_served_at_or_after_expiry_minus_safety() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(5));
    fetch(&mut manager, t0, Some(HOUR));
    let limit = t0 + HOUR - 5 * SECOND;
    let just_before = limit - Duration::from_nanos(1);
    assert!(matches!(
        manager.token(just_before),
        TokenState::RefreshDue(_)
    ));
    assert!(matches!(manager.token(limit), TokenState::Pending));
    assert!(matches!(manager.token(t0 + 2 * HOUR), TokenState::Pending));

    // A 20-second token keeps a tenth of its lifetime, not five seconds.
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(5));
    fetch(&mut manager, t0, Some(20 * SECOND));
    assert!(matches!(
        manager.token(t0 + 17 * SECOND),
        TokenState::RefreshDue(_)
    ));
    assert!(matches!(
        manager.token(t0 + 18 * SECOND),
        TokenState::Pending
    ));
}

#[test]
fn only_one_fetch_is_in_flight() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(6));
    let first = manager.poll_fetch(t0).expect("due");
    assert!(manager.is_fetching());
    for step in 0..100 {
        assert!(manager.poll_fetch(t0 + step * SECOND).is_none());
        assert!(matches!(
            manager.token(t0 + step * SECOND),
            TokenState::Pending
        ));
    }
    assert_eq!(
        manager.poll_timeout(),
        None,
        "nothing to wake for while fetching"
    );
    manager
        .handle_token(first, token(t0, Some(HOUR)), t0)
        .expect("own fetch");
    assert!(!manager.is_fetching());
    assert!(
        manager.poll_fetch(t0).is_none(),
        "the fresh token needs no fetch"
    );
}

#[test]
fn result_for_another_manager_is_refused_as_misuse() {
    let t0 = Instant::now();
    let mut ours = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(7));
    let mut theirs = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(8));
    let _ours_id = ours.poll_fetch(t0).expect("due");
    let foreign = theirs.poll_fetch(t0).expect("due");
    let serial = foreign.serial();
    let refused = ours.handle_token(foreign, token(t0, Some(HOUR)), t0);
    assert_eq!(refused, Err(FetchMismatch { serial }));
    assert!(ours.cached().is_none());
    assert!(ours.is_fetching(), "our own fetch is still in flight");
}

#[test]
fn transient_backoff_is_decorrelated_and_capped() {
    let t0 = Instant::now();
    let policy = RefreshPolicy::default();
    let (initial, cap) = (policy.backoff_initial, policy.backoff_max);
    let mut manager = TokenManager::new(policy, Rng::from_seed(9));
    let mut now = t0;
    let mut previous = initial;
    let mut delays = Vec::new();
    for _ in 0..40 {
        fail(&mut manager, now, transient());
        let (at, wake) = manager.poll_timeout().expect("backoff deadline");
        assert_eq!(wake, Wake::Backoff);
        let delay = at - now;
        assert!(delay >= initial, "{delay:?}");
        assert!(delay <= cap, "{delay:?}");
        assert!(
            delay <= (previous * 3).max(initial),
            "{delay:?} after {previous:?}"
        );
        assert!(manager.poll_fetch(at - Duration::from_nanos(1)).is_none());
        delays.push(delay);
        previous = delay;
        now = at;
        manager.handle_timeout(now);
    }
    assert!(
        delays.iter().any(|delay| *delay >= cap / 2),
        "grows to the cap: {delays:?}"
    );
    assert!(delays[0] <= 3 * initial);
}

#[test]
fn success_resets_the_backoff() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(10));
    let mut now = t0;
    for _ in 0..10 {
        fail(&mut manager, now, transient());
        now = manager.poll_timeout().expect("deadline").0;
    }
    fetch(&mut manager, now, Some(HOUR));
    assert!(manager.last_error().is_none());
    let now = now + 2 * HOUR;
    fail(&mut manager, now, transient());
    let (at, _) = manager.poll_timeout().expect("deadline");
    assert!(
        at - now <= 3 * SECOND,
        "starts again from the initial backoff"
    );
}

#[test]
fn retry_after_is_a_lower_bound_capped_at_the_hold_off() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(11));
    fail(
        &mut manager,
        t0,
        provider("temporarily_unavailable", Some(45 * SECOND)),
    );
    let (at, wake) = manager.poll_timeout().expect("deadline");
    assert_eq!((at, wake), (t0 + 45 * SECOND, Wake::Backoff));
    let TokenState::Unavailable(Error::BackingOff { retry_in, .. }) = manager.token(t0) else {
        panic!("expected a backoff");
    };
    assert_eq!(retry_in, 45 * SECOND);

    let now = at;
    fail(
        &mut manager,
        now,
        provider("temporarily_unavailable", Some(24 * HOUR)),
    );
    let (at, _) = manager.poll_timeout().expect("deadline");
    assert_eq!(
        at,
        now + 5 * MINUTE,
        "an absurd Retry-After waits the hold-off at most"
    );
}

#[test]
fn permanent_error_holds_off_until_reset() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(12));
    fail(&mut manager, t0, provider("invalid_client", None));
    assert_eq!(
        manager.poll_timeout(),
        Some((t0 + 5 * MINUTE, Wake::HoldOff))
    );
    let now = t0 + 4 * MINUTE;
    assert!(manager.poll_fetch(now).is_none());
    let TokenState::Unavailable(error) = manager.token(now) else {
        panic!("expected the hold-off error");
    };
    assert!(matches!(&error, Error::HeldOff { retry_in, .. } if *retry_in == MINUTE));
    assert_eq!(error.retry(), RetryAdvice::Permanent);
    assert!(error.to_string().contains("invalid_client"), "{error}");
    assert!(error.to_string().contains("reset()"), "{error}");

    manager.reset();
    assert!(matches!(manager.token(now), TokenState::Pending));
    fetch(&mut manager, now, Some(HOUR));
}

#[test]
fn permanent_error_hold_off_ends_on_its_own() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(13));
    fail(&mut manager, t0, provider("invalid_grant", None));
    let (at, _) = manager.poll_timeout().expect("deadline");
    manager.handle_timeout(at);
    assert_eq!(manager.poll_timeout(), None);
    fail(&mut manager, at, provider("invalid_grant", None));
    assert_eq!(
        manager.poll_timeout(),
        Some((at + 5 * MINUTE, Wake::HoldOff))
    );
}

#[test]
fn valid_token_is_served_while_the_refresh_fails() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(no_jitter(), Rng::from_seed(14));
    let generation = fetch(&mut manager, t0, Some(HOUR));
    assert_eq!(
        manager.poll_timeout(),
        Some((t0 + HOUR - MINUTE, Wake::RefreshAhead))
    );

    let mut now = t0 + HOUR - MINUTE;
    manager.handle_timeout(now);
    while let Some(id) = manager.poll_fetch(now) {
        manager
            .handle_failure(id, transient(), now)
            .expect("own fetch");
        assert_eq!(served_generation(manager.token(now)), Some(generation));
        let (at, wake) = manager.poll_timeout().expect("deadline");
        now = at;
        manager.handle_timeout(now);
        if wake == Wake::Expiry {
            break;
        }
    }
    assert_eq!(
        now,
        t0 + HOUR - 5 * SECOND,
        "served until expiry minus safety"
    );
    assert!(manager.cached().is_none(), "the expired token is dropped");
    assert!(matches!(
        manager.token(now),
        TokenState::Unavailable(Error::BackingOff { .. }) | TokenState::Pending
    ));
}

#[test]
fn permanent_error_during_refresh_keeps_serving_the_valid_token() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(no_jitter(), Rng::from_seed(15));
    let generation = fetch(&mut manager, t0, Some(HOUR));
    let now = t0 + HOUR - MINUTE;
    fail(&mut manager, now, provider("invalid_client", None));
    assert_eq!(served_generation(manager.token(now)), Some(generation));
    // Expiry comes before the hold-off ends.
    assert_eq!(
        manager.poll_timeout(),
        Some((t0 + HOUR - 5 * SECOND, Wake::Expiry))
    );
    let after = t0 + HOUR;
    manager.handle_timeout(after);
    assert!(matches!(
        manager.token(after),
        TokenState::Unavailable(Error::HeldOff { .. })
    ));
}

#[test]
fn invalidation_by_generation_ignores_older_generations() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(16));
    let first = fetch(&mut manager, t0, Some(HOUR));
    assert_eq!(first.get(), 1);
    assert!(manager.invalidate(first, t0));
    assert!(matches!(manager.token(t0), TokenState::Pending));
    let second = fetch(&mut manager, t0, Some(HOUR));
    assert_eq!(second.get(), 2);

    // Callers still holding the first token report it late: ignored.
    assert!(!manager.invalidate(first, t0));
    assert_eq!(served_generation(manager.token(t0)), Some(second));
    assert!(manager.invalidate(second, t0));
    assert!(
        !manager.invalidate(second, t0),
        "only the first report counts"
    );
    assert_eq!(fetch(&mut manager, t0, Some(HOUR)).get(), 3);
}

#[test]
fn invalidation_during_a_fetch_waits_for_that_fetch() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(no_jitter(), Rng::from_seed(17));
    let first = fetch(&mut manager, t0, Some(HOUR));
    let now = t0 + HOUR - MINUTE;
    let id = manager.poll_fetch(now).expect("refresh due");
    assert!(manager.invalidate(first, now));
    assert!(matches!(manager.token(now), TokenState::Pending));
    assert!(manager.poll_fetch(now).is_none());
    let second = manager
        .handle_token(id, token(now, Some(HOUR)), now)
        .expect("own fetch");
    assert_eq!(served_generation(manager.token(now)), Some(second));
}

#[test]
fn poll_timeout_names_each_reason() {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(no_jitter(), Rng::from_seed(18));
    assert_eq!(manager.poll_timeout(), None);
    fetch(&mut manager, t0, Some(HOUR));
    assert_eq!(
        manager.poll_timeout(),
        Some((t0 + HOUR - MINUTE, Wake::RefreshAhead))
    );
    let now = t0 + HOUR - MINUTE;
    let id = manager.poll_fetch(now).expect("due");
    assert_eq!(
        manager.poll_timeout(),
        Some((t0 + HOUR - 5 * SECOND, Wake::Expiry))
    );
    manager
        .handle_failure(id, transient(), now)
        .expect("own fetch");
    assert_eq!(
        manager.poll_timeout().map(|(_, wake)| wake),
        Some(Wake::Backoff)
    );
}

/// Runs a fixed script of successes, failures and invalidations, and records
/// every decision the manager made.
fn run_script(seed: u64) -> Vec<(Duration, Wake)> {
    let t0 = Instant::now();
    let mut manager = TokenManager::new(RefreshPolicy::default(), Rng::from_seed(seed));
    let mut now = t0;
    let mut trace = Vec::new();
    for round in 0..30u32 {
        if let Some(id) = manager.poll_fetch(now) {
            if round % 3 == 0 {
                manager
                    .handle_failure(id, transient(), now)
                    .expect("own fetch");
            } else {
                let generation = manager
                    .handle_token(id, token(now, Some(HOUR)), now)
                    .expect("own fetch");
                if round % 5 == 0 {
                    manager.invalidate(generation, now);
                }
            }
        }
        let Some((at, wake)) = manager.poll_timeout() else {
            continue;
        };
        trace.push((at - t0, wake));
        now = at;
        manager.handle_timeout(now);
    }
    trace
}

#[test]
fn one_seed_reproduces_every_decision() {
    let first = run_script(42);
    assert!(first.len() > 20);
    assert_eq!(first, run_script(42));
    assert_ne!(first, run_script(43));
}

#[test]
fn policy_values_are_brought_into_range() {
    let mut policy = RefreshPolicy::default();
    policy.jitter = f64::NAN;
    policy.backoff_initial = Duration::ZERO;
    policy.backoff_max = Duration::MAX;
    let policy = policy.normalized();
    assert_eq!(policy.jitter, 0.0);
    assert!(policy.backoff_initial > Duration::ZERO);
    assert!(policy.backoff_max <= Duration::from_secs(366 * 24 * 3600));
    let mut policy = RefreshPolicy::default();
    policy.jitter = 7.0;
    assert_eq!(policy.normalized().jitter, 1.0);
}

// ---------------------------------------------------------------------------
// Model-based property: a reference model of the token lifecycle, compared
// with the manager after every step.

const BACKOFF: Duration = Duration::from_secs(2);
const HOLD_OFF: Duration = Duration::from_secs(300);

/// A policy whose every deadline the model can compute exactly.
fn model_policy() -> RefreshPolicy {
    let mut policy = RefreshPolicy::default();
    policy.jitter = 0.0;
    policy.backoff_initial = BACKOFF;
    policy.backoff_max = BACKOFF;
    policy.permanent_hold_off = HOLD_OFF;
    policy
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    /// Jump to the next deadline and handle it.
    Timeout,
    StartFetch,
    Succeed(Option<u64>),
    FailTransient(Option<u64>),
    FailPermanent,
    InvalidateCurrent,
    InvalidateOlder,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4000u64).prop_map(Op::Advance),
        Just(Op::Timeout),
        Just(Op::StartFetch),
        prop::option::weighted(0.9, 1..50_000u64).prop_map(Op::Succeed),
        prop::option::of(0..600u64).prop_map(Op::FailTransient),
        Just(Op::FailPermanent),
        Just(Op::InvalidateCurrent),
        Just(Op::InvalidateOlder),
        Just(Op::Reset),
    ]
}

#[derive(Debug)]
struct ModelToken {
    generation: u64,
    refresh_at: Option<Instant>,
    serve_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct Model {
    generation: u64,
    token: Option<ModelToken>,
    in_flight: bool,
    /// The end of a running backoff or hold-off, and whether it is a hold-off.
    blocked: Option<(Instant, bool)>,
    /// Every generation handed out, as callers would have seen them.
    seen: Vec<Generation>,
}

impl Model {
    fn servable(&self, now: Instant) -> Option<&ModelToken> {
        self.token
            .as_ref()
            .filter(|t| t.serve_until.is_none_or(|until| now < until))
    }

    fn blocks(&self, now: Instant) -> Option<bool> {
        self.blocked
            .filter(|(until, _)| now < *until)
            .map(|(_, hold_off)| hold_off)
    }

    fn receive(&mut self, now: Instant, lifetime: Option<Duration>) {
        self.generation += 1;
        self.in_flight = false;
        self.blocked = None;
        let (refresh_at, serve_until) = match lifetime {
            None => (None, None),
            Some(lifetime) => {
                let expires = now + lifetime;
                let until = expires - (5 * SECOND).min(lifetime / 10);
                let refresh = (expires - MINUTE.min(lifetime / 2)).max(now + lifetime / 2);
                (Some(refresh.min(until)), Some(until))
            }
        };
        self.token = Some(ModelToken {
            generation: self.generation,
            refresh_at,
            serve_until,
        });
    }

    fn fetch_due(&self, now: Instant) -> bool {
        let fresh = self
            .servable(now)
            .is_some_and(|t| t.refresh_at.is_none_or(|at| now < at));
        !self.in_flight && self.blocks(now).is_none() && !fresh
    }

    fn next_deadline(&self) -> Option<(Instant, Wake)> {
        let expiry = self
            .token
            .as_ref()
            .and_then(|t| t.serve_until)
            .map(|at| (at, Wake::Expiry));
        let next = if self.in_flight {
            None
        } else if let Some((at, hold_off)) = self.blocked {
            Some((
                at,
                if hold_off {
                    Wake::HoldOff
                } else {
                    Wake::Backoff
                },
            ))
        } else {
            self.token
                .as_ref()
                .and_then(|t| t.refresh_at)
                .map(|at| (at, Wake::RefreshAhead))
        };
        match (expiry, next) {
            (Some(a), Some(b)) => Some(if b.0 <= a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

fn check(manager: &TokenManager, model: &Model, now: Instant) -> Result<(), TestCaseError> {
    match (manager.token(now), model.servable(now)) {
        (TokenState::Fresh(cached), Some(expected)) => {
            prop_assert_eq!(cached.generation().get(), expected.generation);
            prop_assert!(expected.refresh_at.is_none_or(|at| now < at));
        }
        (TokenState::RefreshDue(cached), Some(expected)) => {
            prop_assert_eq!(cached.generation().get(), expected.generation);
            prop_assert!(expected.refresh_at.is_some_and(|at| now >= at));
        }
        (TokenState::Pending, None) => {
            prop_assert!(model.in_flight || model.blocks(now).is_none());
        }
        (TokenState::Unavailable(error), None) => {
            prop_assert!(!model.in_flight);
            let hold_off = model.blocks(now);
            prop_assert!(hold_off.is_some(), "unavailable without a backoff");
            prop_assert_eq!(
                matches!(error, Error::HeldOff { .. }),
                hold_off == Some(true)
            );
        }
        (state, expected) => {
            prop_assert!(
                false,
                "manager {:?}, model {:?} at {:?}",
                state,
                expected,
                now
            );
        }
    }
    if let Some(cached) = manager.cached().filter(|c| c.is_servable(now)) {
        let token = cached.token();
        if let (Some(expires), Some(lifetime)) = (token.expires_at(), token.lifetime()) {
            prop_assert!(
                now + (5 * SECOND).min(lifetime / 10) < expires,
                "served too late"
            );
            let refresh_at = cached.refresh_at().unwrap_or(expires);
            prop_assert!(refresh_at >= token.received_at() + lifetime / 2);
        }
    }
    if let Some(lease) = manager.lease() {
        let Some(cached) = manager.cached() else {
            return Err(TestCaseError::fail("a lease without a cached token"));
        };
        prop_assert!(Arc::ptr_eq(lease.token(), cached));
        prop_assert_eq!(lease.until().is_none(), cached.serve_until().is_none());
        if let (Some(until), Some(serve_until)) = (lease.until(), cached.serve_until()) {
            prop_assert!(until <= serve_until, "lease outlives servability");
        }
        if lease.covers(now) {
            prop_assert_eq!(
                served_generation(manager.token(now)),
                Some(cached.generation())
            );
            prop_assert!(!model.fetch_due(now), "lease covers a due fetch");
        }
    }
    prop_assert_eq!(manager.is_fetching(), model.in_flight);
    prop_assert_eq!(manager.poll_timeout(), model.next_deadline());
    Ok(())
}

fn step(
    manager: &mut TokenManager,
    model: &mut Model,
    fetch: &mut Option<FetchId>,
    now: &mut Instant,
    op: Op,
) -> Result<(), TestCaseError> {
    match op {
        Op::Advance(seconds) => *now += Duration::from_secs(seconds),
        Op::Timeout => {
            if let Some((at, _)) = model.next_deadline() {
                *now = (*now).max(at);
            }
            manager.handle_timeout(*now);
            let now = *now;
            model
                .token
                .take_if(|t| t.serve_until.is_some_and(|until| until <= now));
            model.blocked.take_if(|(until, _)| *until <= now);
        }
        Op::StartFetch => {
            let started = manager.poll_fetch(*now);
            let due = model.fetch_due(*now);
            prop_assert_eq!(started.is_some(), due);
            if started.is_some() {
                *fetch = started;
                model.in_flight = true;
            }
        }
        Op::Succeed(lifetime) => {
            let Some(id) = fetch.take() else {
                return Ok(());
            };
            let lifetime = lifetime.map(Duration::from_secs);
            let generation = manager.handle_token(id, token(*now, lifetime), *now);
            model.receive(*now, lifetime);
            prop_assert_eq!(
                generation.clone().map(Generation::get),
                Ok(model.generation)
            );
            if let Ok(generation) = generation {
                model.seen.push(generation);
            }
        }
        Op::FailTransient(after) => {
            let Some(id) = fetch.take() else {
                return Ok(());
            };
            let after = after.map(Duration::from_secs);
            let error = provider("temporarily_unavailable", after);
            prop_assert!(manager.handle_failure(id, error, *now).is_ok());
            let wait = BACKOFF.max(after.unwrap_or_default().min(HOLD_OFF));
            model.in_flight = false;
            model.blocked = Some((*now + wait, false));
        }
        Op::FailPermanent => {
            let Some(id) = fetch.take() else {
                return Ok(());
            };
            prop_assert!(
                manager
                    .handle_failure(id, provider("invalid_client", None), *now)
                    .is_ok()
            );
            model.in_flight = false;
            model.blocked = Some((*now + HOLD_OFF, true));
        }
        Op::InvalidateCurrent | Op::InvalidateOlder => {
            let back = if matches!(op, Op::InvalidateCurrent) {
                1
            } else {
                2
            };
            let Some(target) = model.seen.len().checked_sub(back).map(|i| model.seen[i]) else {
                return Ok(());
            };
            let expected = model
                .token
                .as_ref()
                .is_some_and(|t| t.generation == target.get());
            prop_assert_eq!(manager.invalidate(target, *now), expected);
            if expected && model.token.take().is_some_and(|t| t.serve_until.is_none()) {
                model.blocked = Some((*now + HOLD_OFF, true));
            }
        }
        Op::Reset => {
            manager.reset();
            model.blocked = None;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn manager_agrees_with_the_reference_model(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut manager = TokenManager::new(model_policy(), Rng::from_seed(seed));
        let mut model = Model::default();
        let mut fetch = None;
        let mut now = Instant::now();
        for op in ops {
            step(&mut manager, &mut model, &mut fetch, &mut now, op)?;
            check(&manager, &model, now)?;
        }
    }
}
