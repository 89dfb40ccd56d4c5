ARG DEBIAN_TAG
FROM registry.local:5000/runtime/debian:${DEBIAN_TAG}
COPY app /app
