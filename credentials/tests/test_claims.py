"""What a token's claims say: the subject, the groups, the dealerships (OIDC_DEALERS_CLAIM)."""

import uuid

import pytest

from credentials import claims
from credentials.oidc import TokenRejected

A, B = uuid.UUID("0b7e4a52-1d3f-4c1e-9a53-2f1c1d9c0001"), uuid.UUID("0b7e4a52-1d3f-4c1e-9a53-2f1c1d9c0002")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([str(A), str(B)], {A, B}),
        ([str(A), str(A).upper()], {A}),  # either case; the same dealership once
        (str(A), {A}),  # a single-valued provider attribute
        ([], set()),
    ],
)
def test_dealer_uuids_are_read_into_a_set(value, expected):
    assert claims.dealer_uuids_from({"dealer_uuids": value}, "dealer_uuids") == frozenset(expected)


def test_no_dealer_claim_or_none_configured_is_no_dealership():
    assert claims.dealer_uuids_from({}, "dealer_uuids") == frozenset()
    assert claims.dealer_uuids_from({"dealer_uuids": [str(A)]}, "") == frozenset()


def test_a_nested_dealer_claim_is_read_by_its_dotted_path():
    assert claims.dealer_uuids_from({"crm": {"dealers": [str(A)]}}, "crm.dealers") == {A}


@pytest.mark.parametrize(
    "value",
    [
        [str(A), "not-a-uuid"],  # one bad item refuses the token, not just the item
        [str(A).replace("-", "")],  # not the canonical form
        ["{" + str(A) + "}"],
        [f" {A}"],
        [1],
        [None],
        {"a": str(A)},
        42,
        True,
        [str(A)] * 1001,
    ],
)
def test_a_malformed_dealer_claim_refuses_the_token(value):
    with pytest.raises(TokenRejected) as refused:
        claims.dealer_uuids_from({"dealer_uuids": value}, "dealer_uuids")
    assert refused.value.code == "token_claim_invalid"
    assert "dealer_uuids" in refused.value.description


def test_groups_map_through_the_configured_mapping_only():
    mapping = {"crm-operators": "Operators", "/crm/auditors": "Auditors"}
    token = {"realm_access": {"roles": ["crm-operators", "/crm/auditors", "offline_access"]}}
    assert claims.groups_from(token, "realm_access.roles", mapping) == {"Operators", "Auditors"}
    assert claims.groups_from({"groups": ["Operators"]}, "groups", mapping) == frozenset()  # a Django name is no key
    assert claims.groups_from({}, "groups", mapping) == frozenset()


def test_the_subject_must_be_a_short_printable_string():
    assert claims.subject_from({"preferred_username": "i.ivanov"}, "preferred_username") == "i.ivanov"
    for bad in ["", "   ", "a\x00b", "a\nb", "x" * 151, None, 7, ["a"]]:
        with pytest.raises(TokenRejected):
            claims.subject_from({"sub": bad}, "sub")
