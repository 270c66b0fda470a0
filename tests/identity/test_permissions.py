"""Groups and grants: a caller's level on a resource is the highest of its own grants, its groups' grants
and the default; an admin manages everything; a creator manages what it created."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from quayside.errors import AlreadyExistsError, NotFoundError
from quayside.identity.model import Identity, Level, Resource, ResourceKind
from quayside.identity.store import IdentityStore
from tests.identity.conftest import unique


def model(name: str) -> Resource:
    return Resource(ResourceKind.MODEL, name)


def experiment(key: str) -> Resource:
    return Resource(ResourceKind.EXPERIMENT, key)


@pytest.fixture
def team(store: IdentityStore) -> dict[str, str]:
    """A user in a group, a user outside it, and an admin, with unique names."""
    names = {"member": unique("member"), "outsider": unique("outsider"), "admin": unique("admin")}
    store.create_user(names["member"])
    store.create_user(names["outsider"])
    store.create_user(names["admin"], admin=True)
    names["group"] = unique("group")
    store.create_group(names["group"], actor=names["admin"])
    store.add_member(names["group"], names["member"], actor=names["admin"])
    return names


def test_the_level_is_the_highest_of_own_grants_group_grants_and_the_default(store: IdentityStore, team):
    iris, wine = model(unique("iris")), model(unique("wine"))
    store.grant(f"group:{team['group']}", iris, Level.EDIT, actor=team["admin"])
    store.grant(team["member"], iris, Level.READ, actor=team["admin"])
    store.grant(team["member"], wine, Level.MANAGE, actor=team["admin"])
    member, outsider = store.identity(team["member"]), store.identity(team["outsider"])
    assert member.groups == frozenset({team["group"]})
    assert store.level_for(member, iris, default=Level.NONE) == Level.EDIT
    assert store.level_for(member, wine, default=Level.READ) == Level.MANAGE
    assert store.level_for(outsider, iris, default=Level.NONE) == Level.NONE
    assert store.level_for(outsider, iris, default=Level.READ) == Level.READ
    assert store.level_for(store.identity(team["admin"]), iris, default=Level.NONE) == Level.MANAGE
    # A grant on a model says nothing about an experiment with the same key.
    assert store.level_for(member, experiment(iris.key), default=Level.NONE) == Level.NONE


def test_leaving_a_group_takes_its_grants_away(store: IdentityStore, team):
    iris = model(unique("iris"))
    store.grant(f"group:{team['group']}", iris, Level.EDIT, actor=team["admin"])
    assert store.get_group(team["group"]).members == (team["member"],)
    store.remove_member(team["group"], team["member"], actor=team["admin"])
    member = store.identity(team["member"])
    assert member.groups == frozenset()
    assert store.level_for(member, iris, default=Level.NONE) == Level.NONE
    with pytest.raises(NotFoundError, match="is not a member"):
        store.remove_member(team["group"], team["member"], actor=team["admin"])


def test_deleting_a_group_deletes_its_grants(store: IdentityStore, team):
    iris = model(unique("iris"))
    store.grant(f"group:{team['group']}", iris, Level.EDIT, actor=team["admin"])
    store.delete_group(team["group"], actor=team["admin"])
    assert store.list_grants(iris) == []
    assert team["group"] not in {g.name for g in store.list_groups()}
    assert store.get_user(team["member"]).groups == ()
    with pytest.raises(NotFoundError, match="no group named"):
        store.grant(f"group:{team['group']}", iris, Level.READ, actor=team["admin"])


def test_readable_keys_are_what_the_caller_or_its_groups_may_read(store: IdentityStore, team):
    own, shared, hidden = unique("own"), unique("shared"), unique("hidden")
    store.grant(team["member"], experiment(own), Level.READ, actor=team["admin"])
    store.grant(f"group:{team['group']}", experiment(shared), Level.MANAGE, actor=team["admin"])
    store.grant(team["outsider"], experiment(hidden), Level.EDIT, actor=team["admin"])
    store.grant(team["member"], model(own), Level.READ, actor=team["admin"])
    member = store.identity(team["member"])
    assert store.readable_keys(member, ResourceKind.EXPERIMENT, default=Level.NONE) == {own, shared}
    assert store.readable_keys(member, ResourceKind.MODEL, default=Level.NONE) == {own}
    assert store.readable_keys(member, ResourceKind.EXPERIMENT, default=Level.READ) is None
    assert store.readable_keys(store.identity(team["admin"]), ResourceKind.MODEL, default=Level.NONE) is None
    assert store.readable_keys(Identity(name="nobody"), ResourceKind.MODEL, default=Level.NONE) == frozenset()


def test_a_grant_replaces_the_last_and_none_removes_it(store: IdentityStore, team):
    iris = model(unique("iris"))
    store.grant(team["member"], iris, Level.READ, actor=team["admin"])
    granted = store.grant(team["member"], iris, Level.MANAGE, actor=team["admin"])
    assert granted is not None and granted.level == Level.MANAGE
    assert [(g.principal, g.level) for g in store.list_grants(iris)] == [(team["member"], Level.MANAGE)]
    assert [g.resource for g in store.list_grants(principal=team["member"])] == [iris]
    assert store.grant(team["member"], iris, Level.NONE, actor=team["admin"]) is None
    assert store.list_grants(iris) == []
    changes = [
        (e.action, e.detail.get("level"), e.detail.get("previous"))
        for e in store.auth_events(1000)
        if e.subject == str(iris)
    ]
    assert changes == [
        ("grant_removed", None, "manage"),
        ("grant_set", "manage", "read"),
        ("grant_set", "read", "none"),
    ]


def test_the_creator_of_a_resource_manages_it_and_the_local_user_gets_no_grant(store: IdentityStore, team):
    iris = model(unique("iris"))
    outsider = store.identity(team["outsider"])
    store.grant_creator(outsider, iris)
    assert store.level_for(outsider, iris, default=Level.NONE) == Level.MANAGE
    local = Identity.local("someone")
    store.grant_creator(local, model(other := unique("other")))
    assert store.list_grants(model(other)) == []


def test_a_deleted_resource_forgets_its_grants_and_a_renamed_one_keeps_them(store: IdentityStore, team):
    old, new, gone = model(unique("old")), unique("new"), model(unique("gone"))
    store.grant(team["member"], old, Level.EDIT, actor=team["admin"])
    store.grant(team["member"], gone, Level.EDIT, actor=team["admin"])
    store.rename_resource(old, new, actor=team["admin"])
    member = store.identity(team["member"])
    assert store.level_for(member, model(new), default=Level.NONE) == Level.EDIT
    assert store.level_for(member, old, default=Level.NONE) == Level.NONE
    assert store.forget_resource(gone, actor=team["admin"]) == 1
    assert store.level_for(member, gone, default=Level.NONE) == Level.NONE


def test_group_names_are_unique_and_membership_is_audited(store: IdentityStore, team):
    with pytest.raises(AlreadyExistsError, match="already exists"):
        store.create_group(team["group"], actor=team["admin"])
    again = store.add_member(team["group"], team["member"], actor=team["admin"])  # already in: no change
    assert again.members == (team["member"],)
    subject = f"group:{team['group']}"
    actions = [(e.action, e.detail.get("user")) for e in store.auth_events(1000) if e.subject == subject]
    assert actions == [("member_added", team["member"]), ("group_created", None)]


def test_concurrent_grants_and_memberships_of_the_same_row_all_succeed(store: IdentityStore, team):
    iris = model(unique("iris"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        grants = list(
            pool.map(lambda _: store.grant(team["outsider"], iris, Level.EDIT, actor="a"), range(8))
        )
        groups = list(
            pool.map(lambda _: store.add_member(team["group"], team["outsider"], actor="a"), range(8))
        )
    assert {g.level for g in grants if g is not None} == {Level.EDIT}
    assert [(g.principal, g.level) for g in store.list_grants(iris)] == [(team["outsider"], Level.EDIT)]
    assert {g.members for g in groups} == {tuple(sorted([team["member"], team["outsider"]]))}
