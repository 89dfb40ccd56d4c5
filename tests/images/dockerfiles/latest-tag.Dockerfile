FROM debian:latest
COPY app /app
CMD ["/app"]
