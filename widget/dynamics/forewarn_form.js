/* Forewarn form script for Dynamics 365 model-driven apps (a JavaScript web resource).
 *
 * Shows the warning-flag status that the Forewarn Dataverse connector writes into the record's
 * columns as a form notification (level word and icon, never colour alone), and opens the
 * details flow in a new browser window: Microsoft does not support IFRAMEing content behind an
 * authentication boundary in web resources, so the widget is not put inside the form.
 *
 * Register Forewarn.Form.onLoad on the form's OnLoad event with "Pass execution context as
 * first parameter", and Forewarn.Form.openDetails as a command bar button's action with the
 * PrimaryControl parameter. Set FOREWARN_URL and TABLES below for your deployment. */
var Forewarn = Forewarn || {};

Forewarn.Form = (function () {
  "use strict";

  // The sidecar's public URL (deployment.public_url).
  var FOREWARN_URL = "https://forewarn.council.example";
  // Table logical name -> Forewarn subject kind and the column holding the subject's reference
  // (null: the record's own id, as the connector's alternate key for contacts uses by default).
  var TABLES = {
    contact: { kind: "customer", ref: null },
    fw_property: { kind: "property", ref: "fw_uprn" },
  };
  // The columns the connector writes (connector setting column_prefix, default "fw_").
  var COLUMNS = {
    level: "fw_level",
    categories: "fw_categories",
    restrictions: "fw_restrictions",
    reviewDue: "fw_reviewdue",
    appealPending: "fw_appealpending",
    // Optional: the connector writes it where its settings name the column (columns.appeal_handler).
    appealHandler: "fw_appealhandler",
    updated: "fw_statusupdated",
  };
  var FLAG_ID = "forewarn-flag";
  var APPEAL_ID = "forewarn-appeal";
  var UNAVAILABLE = "Flag status unavailable: do not assume there is no warning.";

  function read(formContext, name) {
    var attribute = formContext.getAttribute(name);
    return attribute ? attribute.getValue() : null;
  }

  function day(value) {
    if (!value) return "";
    var date = value instanceof Date ? value : new Date(value);
    if (isNaN(date.getTime())) return String(value);
    return date.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric" });
  }

  function onLoad(executionContext) {
    var formContext = executionContext.getFormContext();
    var ui = formContext.ui;
    ui.clearFormNotification(FLAG_ID);
    ui.clearFormNotification(APPEAL_ID);
    var levelColumn = formContext.getAttribute(COLUMNS.level);
    if (!levelColumn) {
      ui.setFormNotification(UNAVAILABLE + " (The Forewarn columns are not on this form.)", "WARNING", FLAG_ID);
      return;
    }
    var level = String(levelColumn.getText() || "").trim().toLowerCase();
    var categories = read(formContext, COLUMNS.categories);
    var restrictions = read(formContext, COLUMNS.restrictions);
    var review = read(formContext, COLUMNS.reviewDue);
    var updated = read(formContext, COLUMNS.updated);
    var parts = [];
    if (categories) parts.push(categories + ".");
    if (restrictions) parts.push("Restrictions: " + restrictions + ".");
    if (review) parts.push("Review due " + day(review) + ".");
    parts.push("Open Forewarn for handling and details.");
    if (level === "red") {
      ui.setFormNotification("RED WARNING FLAG: " + parts.join(" "), "ERROR", FLAG_ID);
    } else if (level === "amber") {
      ui.setFormNotification("AMBER WARNING FLAG: " + parts.join(" "), "WARNING", FLAG_ID);
    } else if (level === "none") {
      ui.setFormNotification(
        "No warning flag on this record" + (updated ? " (Forewarn status of " + day(updated) + ")." : "."),
        "INFO",
        FLAG_ID
      );
    } else {
      // Never synced, or a value this script does not know: never shown as "no flag".
      ui.setFormNotification(UNAVAILABLE + " Open Forewarn to check this record.", "WARNING", FLAG_ID);
    }
    var handler = String(read(formContext, COLUMNS.appealHandler) || "").trim();
    if (read(formContext, COLUMNS.appealPending) === true) {
      ui.setFormNotification(
        "An appeal against the warning flag is pending" + (handler ? ": handled by " + handler + "." : "."),
        "INFO",
        APPEAL_ID
      );
    } else if (handler && (level === "red" || level === "amber")) {
      // Where the council names the manager from the decision letter on (Eastleigh 30).
      ui.setFormNotification(
        "The appeal window is open: the case is handled by " + handler + ".",
        "INFO",
        APPEAL_ID
      );
    }
  }

  function detailsUrl(formContext) {
    var table = TABLES[formContext.data.entity.getEntityName()];
    if (!table) return null;
    var ref = table.ref
      ? read(formContext, table.ref)
      : formContext.data.entity.getId().replace(/[{}]/g, "").toLowerCase();
    if (!ref) return null;
    var embed = "/embed?kind=" + encodeURIComponent(table.kind) + "&ref=" + encodeURIComponent(ref);
    // Single sign-on in a window of its own; it lands on the record's Forewarn page.
    return FOREWARN_URL + "/auth/login?next=" + encodeURIComponent(embed);
  }

  function openDetails(primaryControl) {
    var url = detailsUrl(primaryControl);
    if (!url) {
      primaryControl.ui.setFormNotification(UNAVAILABLE + " This record is not set up for Forewarn.", "WARNING", FLAG_ID);
      return;
    }
    Xrm.Navigation.openUrl(url, { width: 720, height: 860 });
  }

  return { onLoad: onLoad, openDetails: openDetails, detailsUrl: detailsUrl };
})();
