"""Which address the sign-in limit counts: the peer, or what trusted proxies say they saw."""

from crm_gateway.client_address import address_behind

PROXIES = ["10.0.0.0/8", "192.168.1.5/32"]


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert address_behind("203.0.113.9", ["1.2.3.4"], PROXIES) == "203.0.113.9"
    assert address_behind("127.0.0.1", ["1.2.3.4"], []) == "127.0.0.1"


def test_behind_trusted_proxies_the_right_most_untrusted_address_counts() -> None:
    # The client forged "1.2.3.4"; the load balancer appended what it saw, 198.51.100.7.
    forwarded = ["1.2.3.4, 198.51.100.7", "10.1.2.3"]
    assert address_behind("192.168.1.5", forwarded, PROXIES) == "198.51.100.7"
    assert address_behind("10.0.0.2", [], PROXIES) == "10.0.0.2"
    assert address_behind("10.0.0.2", ["10.0.0.9"], PROXIES) == "10.0.0.9"
