"""The alert bus: Service Bus on Azure, an in-process bus for the local runtime."""
