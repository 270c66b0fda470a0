"""Who may do what: users, service accounts, groups, grants, tokens and passwords.

No HTTP here: the server resolves a request's credentials to an :class:`~quayside.identity.model.Identity`
through :class:`~quayside.identity.store.IdentityStore` and checks it against the rules in
:mod:`quayside.identity.model`. Like ``db``, this package imports no component.
"""
