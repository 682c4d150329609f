"""Security group rule names: one per port and CIDR, unique for distinct CIDRs, stable."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from infra.network import IngressRule

networks = st.one_of(
    st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False), st.ip_addresses(v=4), st.integers(0, 32)),
    st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False), st.ip_addresses(v=6), st.integers(0, 128)),
)


def suffix(cidr: str) -> str:
    return IngressRule(22, cidr, "ssh").resource_suffix


def test_ipv6_cidrs_that_differ_only_in_where_the_zeros_are_get_different_names():
    assert suffix("1::2:3/128") != suffix("1:2::3/128")


def test_ipv4_names_are_the_ones_existing_stacks_have():
    assert suffix("198.51.100.7/32") == "ssh-198-51-100-7-32"


@given(st.lists(networks, unique=True, min_size=2, max_size=8))
def test_distinct_cidrs_get_distinct_names(cidrs):
    names = [suffix(str(cidr)) for cidr in cidrs]
    assert len(set(names)) == len(names)


@given(networks)
def test_the_same_cidr_in_any_spelling_keeps_its_name(network):
    spellings = {str(network), network.exploded, str(network).upper()}
    assert len({suffix(text) for text in spellings}) == 1
