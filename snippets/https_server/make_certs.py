"""做一个 CA 和它签发的服务器证书，写进当前文件夹。

ca.pem      CA 的证书：客户端信任它
server.crt  服务器的证书，签给 localhost 和 127.0.0.1
server.key  server.crt 的私钥：只给服务器
"""

from pathlib import Path

import trustme

NAMES = ("localhost", "127.0.0.1")  # 证书签给的主机名和 IP
FILES = ("ca.pem", "server.crt", "server.key")


def make_certs(folder: Path = Path()) -> trustme.CA:
    ca = trustme.CA()
    cert = ca.issue_cert(*NAMES)
    ca.cert_pem.write_to_path(folder / "ca.pem")
    # 证书链：服务器的证书在前，中间 CA 的证书（如果有）跟在后面
    with open(folder / "server.crt", "wb") as chain:
        for pem in cert.cert_chain_pems:
            chain.write(pem.bytes())
    cert.private_key_pem.write_to_path(folder / "server.key")
    return ca  # 还能用它签发别的证书


def ensure_certs(folder: Path = Path()) -> None:
    """本页的其他程序先调用它：文件夹里还没有这三个文件，就做一套。"""
    if not all((folder / name).exists() for name in FILES):
        make_certs(folder)


if __name__ == "__main__":
    make_certs()
    for name in FILES:
        first_line = Path(name).read_text().splitlines()[0]
        print(f"{name:<11} {first_line}")
