"""The UI element ids of SPEC section 8, spelled out as the spec spells them.

Tests import these rather than the product's constants, so renaming an id in
the code fails the tests instead of silently changing the contract.
"""

from __future__ import annotations

LINK = "admin.payment_processing_link"
FORM = "admin.payment_processing.sales_contact_form"
FIELDS = "admin.payment_processing.integration_fields"
SEARCH = "payments.search_page"
BUTTON = "invoice.process_payment_button"
OPTION = "invoice_history.process_payment_option"
PP_CC = "process_payment.credit_card"
PP_EC = "process_payment.echeck"
PAY = "client_portal.make_a_payment"
CP_CC = "client_portal.credit_card"
CP_EC = "client_portal.echeck"

SPEC_SECTION_8_IDS = [LINK, FORM, FIELDS, SEARCH, BUTTON, OPTION, PP_CC, PP_EC, PAY, CP_CC, CP_EC]
