"""One router per concern; ``opencac.service.app.ROUTER_MODULES`` lists them."""
