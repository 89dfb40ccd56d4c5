FROM docker.io/library/debian:12
COPY app /app
CMD ["/app"]
