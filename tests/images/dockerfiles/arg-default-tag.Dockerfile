ARG TAG
FROM registry.local:5000/runtime/debian:${TAG:-12}
COPY app /app
CMD ["/app"]
