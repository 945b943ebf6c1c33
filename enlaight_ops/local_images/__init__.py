"""Registry-less ("local") equivalents of the stack's third-party images: `recipes` (what, pure) and `build` (how).

Where no container registry is reachable nothing can be pulled, so every image the stack runs has to
be built here, from Debian packages only:

1. ``enlaight-local/debian:bookworm``: ``debootstrap --variant=minbase`` into a temporary directory,
   streamed with ``tar`` into ``docker import``.
2. Every other image: ``docker build`` of ``images/<name>/Dockerfile`` on top of that base (or of the
   local python image), each with an entrypoint that honours the official image's contract.

Each image carries the label ``org.enlaight.local-image.hash``: a digest of its recipe (its folder
under ``images/``, the hashes of the images it is built from and the CA bundle). An image whose tag
already carries the expected hash is reused, so a second run builds nothing.

A CA bundle (for TLS-intercepting proxies) is copied into the base image's root filesystem while it
is still a temporary directory -- never into the repository -- and SSL_CERT_FILE, PIP_CERT,
REQUESTS_CA_BUNDLE and NODE_EXTRA_CA_CERTS point at it in every image built on it.
"""

from .build import build_local_images
from .recipes import HOST_CA_BUNDLE, IMAGES, SLOW_IMAGES, LocalImage, default_ca_bundle

__all__ = ["HOST_CA_BUNDLE", "IMAGES", "SLOW_IMAGES", "LocalImage", "build_local_images", "default_ca_bundle"]
