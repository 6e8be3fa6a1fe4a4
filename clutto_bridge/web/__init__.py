"""HTTP: the provisioning API (and later the portal), served beside the appservice API."""
