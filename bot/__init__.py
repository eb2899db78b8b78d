"""Herald: a customer-support chatbot that answers, and reaches out first without being pushy."""
