"""The tests' own machinery: the ports servers.free_port() hands out."""

import servers


def test_free_ports_come_from_below_the_client_socket_range():
    """A client socket of any process could take a port from that range before
    the server that was to listen on it binds it."""
    ports = [servers.free_port() for _ in range(50)]
    low, high = servers.LOWEST_PORT, servers.EPHEMERAL_LOW
    assert all(low <= port < high for port in ports), ports
    # Drawn from the system's randomness: workers seeded alike still differ.
    assert len(set(ports)) > 45, ports
