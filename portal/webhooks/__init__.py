"""Webhooks: per-team subscriptions to the portal's events, delivered as signed CloudEvents.

The apps announce what happened through `portal.events.event_emit` (they never import this
package); every matching subscription gets a `WebhookDelivery` in the caller's transaction
and a `webhooks.deliver` job on commit. Modules: `choices` (event types, delivery states),
`models`, `cloudevents` and `signing` (pure), `transport` (the HTTP client that refuses
loopback and link-local addresses and never follows redirects), `services` (writes),
`selectors` (reads), `jobs` (the delivery job), `tasks` (the due-retry sweep), `api`, `views`.
"""
