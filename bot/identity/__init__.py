"""Who a customer is: signed web tokens, linked chat identities, and ownership checks."""
