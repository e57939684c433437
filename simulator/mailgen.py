"""Synthetic, seeded mail generation for the poisoning simulation.

The :class:`SyntheticMailFactory` produces realistic-looking emails for every
category defined in :mod:`simulator.email`. All randomness comes from one
``numpy.random.Generator`` and one seeded ``faker.Faker`` instance owned by the
factory; no global random state is touched, so two factories built with the
same seed and driven by the same sequence of calls produce identical mail.

Faker is only used at construction time to fill pools (names, companies,
cities, brands, ...). Generation fills string templates from those pools with
uniforms drawn from the generator in blocks, which keeps
:meth:`SyntheticMailFactory.make` fast (tens of thousands of emails per second).

The classes overlap on purpose, the way real mail does. Retail promotions and
discount spam share marketing copy, phishing copies bank-alert wording,
personal-looking spam shares casual chat with personal mail, and finance
newsletters share money talk with investment spam. Most emails carry a little
of that shared wording; a minority lean on it heavily and are genuinely hard.
A bag-of-words Naive Bayes trained on a clean mix is therefore good (about
96% accurate on ``category_mix(0.4, 0.05)``) but not perfect. No label is
ever flipped; the share of hard emails per category is :data:`P_HEAVY`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import date

import faker
import numpy as np

from simulator.email import Email

__all__ = [
    "BANKS",
    "BANK_DOMAINS",
    "CAMPAIGN_DOMAINS",
    "PHISHING_DOMAINS",
    "P_HEAVY",
    "SyntheticMailFactory",
    "category_mix",
]

# ---------------------------------------------------------------------------
# Fixed identities
# ---------------------------------------------------------------------------

#: Fictional banks as ``(display name, domain)``; bank alerts come from these.
BANKS: tuple[tuple[str, str], ...] = (
    ("Northbridge Bank", "northbridgebank.com"),
    ("Harborview Credit Union", "harborviewcu.com"),
    ("Summit Trust", "summittrust.com"),
    ("Clearwater Savings", "clearwatersavings.com"),
)
#: Domains legitimate bank alerts are sent from.
BANK_DOMAINS: tuple[str, ...] = tuple(domain for _, domain in BANKS)

#: Lookalike domains used by phishing, one tuple per entry of :data:`BANKS`.
PHISHING_DOMAINS: tuple[tuple[str, ...], ...] = (
    ("northbridge-bank-secure.com", "northbridgebank-verify.net", "northbridgebank.com.account-review.co",
     "secure-northbridge.support"),
    ("harborview-cu-login.com", "harborviewcu-alerts.net", "harborviewcu.com.member-check.info",
     "harborview-security.online"),
    ("summittrust-security.info", "summit-trust-verify.com", "summittrust.com.session-id.co",
     "summittrust-online.support"),
    ("clearwater-savings-alert.com", "clearwatersavings-secure.net", "clearwatersavings.com.id-check.co",
     "clearwater-verify.online"),
)

#: Other institutions phishing imitates, with their lookalike domains.
_OTHER_PHISH_TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("PayWallet", ("paywallet-support.com", "paywallet.com.account-verify.co", "paywallet-resolution.net")),
    ("Granite National Bank", ("granitenational-secure.com", "granite-bank-login.net")),
    ("Pioneer Federal", ("pioneerfederal-alerts.com", "pioneer-fed-verify.info")),
    ("CardGuard Services", ("cardguard-services.net", "cardguard-verify.com")),
    ("Keystone Card Services", ("keystonecard-security.com", "keystone-card-billing.online")),
)

#: Sender domains of the attacker's campaign.
CAMPAIGN_DOMAINS: tuple[str, ...] = (
    "zentracoin.io",
    "zentra-capital.com",
    "zentrawealth.net",
    "get-zentra.com",
)

#: Probability that an email of a category is written mostly with wording it
#: shares with the other class (subject, greeting, body and sign-off). These
#: emails are the honest source of ham/spam confusion. Spam themes that have
#: a ham counterpart (discount, money, personal-looking) use ``"spam"``.
P_HEAVY: dict[str, float] = {
    "personal": 0.07,
    "newsletter": 0.08,
    "promo": 0.10,
    "spam": 0.6,
    "phishing": 0.15,
}

_FREEMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me", "aol.com")
_THROWAWAY_TLDS = ("xyz", "top", "info", "biz", "click", "online", "site", "ru", "shop", "club", "com", "net")
_THROWAWAY_WORDS = (
    "best", "deal", "offer", "promo", "cash", "win", "health", "pharm", "med", "rx", "lucky", "prize",
    "loan", "fast", "quick", "smart", "secure", "global", "direct", "mega", "super", "vip", "gold",
    "slim", "fit", "match", "date", "love", "easy", "top", "net", "mail", "web", "zone", "hub",
    "store", "shop", "market", "trade", "club", "group", "pro", "plus", "now", "today", "free",
)
_SPAM_URL_FORMATS = ("{0}://{1}/{2}?id={3}", "{0}://{1}/{2}", "{0}://{1}/r/{3}", "{0}://www.{1}/{2}/{3}",
                     "{0}://{1}/?ref={3}")
_PHISH_URL_PATHS = ("verify?session={0}", "login", "account/review", "secure/{0}", "signin?ref={0}", "alerts/{0}")
_SHARE_HOSTS = ("photos.app.goo.gl", "www.dropbox.com/s", "drive.google.com/file/d", "bit.ly",
                "1drv.ms", "we.tl", "www.icloud.com/photos")

# ---------------------------------------------------------------------------
# Text pools. Placeholders ``{name}`` are filled per email; a placeholder
# keeps one value within an email (``{amount}`` in subject and body agree).
# ---------------------------------------------------------------------------

#: Neutral sentences any sender might write.
_SHARED = (
    "Please let me know if you have any questions.",
    "Thank you for your time.",
    "See the details below.",
    "We hope you are doing well.",
    "Have a great day.",
    "Feel free to reply to this email.",
    "Thanks again for your patience.",
    "More information is available on our website.",
    "This message was sent to you on {date}.",
    "We appreciate your business.",
    "You can reply to this message at any time.",
)

# --- shared kits: wording used on both sides of the ham/spam line ---------------

# Marketing copy: retail promotions (ham) and discount spam.
_MARKETING_SUBJECTS = (
    "{pct}% off everything, today only",
    "Last chance: up to {pct}% off",
    "Your exclusive coupon is inside",
    "Free shipping ends tonight",
    "Congratulations, you have a reward waiting",
    "Don't miss out: deals end tonight",
    "Special offer just for you",
)
_MARKETING_OPENERS = ("Hi {first},", "Hello,", "Dear customer,", "Great news!", "Hello {first}, as a valued customer,")
_MARKETING = (
    "Limited time offer, don't miss out.",
    "Free shipping on all orders today only.",
    "Use code {code} at checkout for an extra {pct2}% off.",
    "Save up to {pct}% on {product}.",
    "Lowest prices guaranteed or we refund the difference.",
    "Claim your free gift with any purchase.",
    "Hurry, this offer ends at midnight!",
    "Shop now while supplies last: {shop_url}",
    "An exclusive deal for our valued customers.",
    "Click here to see all the deals: {shop_url}",
    "Congratulations {first}! You have been selected for an exclusive reward.",
    "Your {price} reward is waiting, click here to redeem.",
    "Special offer for you: {pct}% off, no minimum purchase.",
    "Don't miss out, these prices won't last.",
    "Top brands at unbeatable prices.",
)
_MARKETING_CLOSERS = (
    "To stop receiving these offers, click here to unsubscribe.",
    "Thank you for shopping with us.",
    "Unsubscribe | Privacy policy",
    "",
)

# Casual chat: personal mail (ham) and personal-looking spam.
_CHAT_SUBJECTS = ("Hi", "Hey", "Long time no see", "Quick favor", "Catching up", "Re: last week",
                  "Did you see this?", "(no subject)", "Hello")
_CHAT = (
    "It's been a while, how have you been?",
    "I hope you and the family are doing well.",
    "Let me know what you think.",
    "Call me when you get this.",
    "Sorry for the late reply, it's been a crazy week.",
    "Are you around this week?",
    "Can you do me a quick favor?",
    "I'll explain everything later.",
    "Take a look when you have a minute: {link_url}",
    "Miss you guys!",
    "Just checking in.",
    "Talk to you soon.",
    "I found this and thought of you: {link_url}",
    "Reply when you get a chance.",
)

# Money talk: finance newsletters (ham), money spam and, later, the campaign.
_MONEY_SUBJECTS = (
    "The one investment to watch this year",
    "Is now the time to buy crypto?",
    "How to grow your savings",
    "Your weekly money briefing",
    "Passive income ideas that actually work",
)
_MONEY_OPENERS = ("Hi {first},", "Dear reader,", "Hello,", "Good morning,")
_MONEY = (
    "Markets: bitcoin rallied {pct}% this week; here is what investors should know.",
    "Smart investors are moving money into crypto and passive income.",
    "How to earn {pct2}% returns on your savings this year.",
    "Financial freedom starts with one decision.",
    "Join thousands of readers who grow their wealth every week.",
    "Is now the time to invest?",
    "Inflation is eating your savings; here is how to protect your money.",
    "Read more: {link_url}",
    "The stock market is up {pct2}% this year, but not everyone is benefiting.",
    "Experts say the next crypto boom could start sooner than you think.",
)
_MONEY_CLOSERS = ("Unsubscribe | Manage preferences", "To your financial success.",
                  "This is not financial advice.", "")

# --- bank_alert ------------------------------------------------------------
# Each alert is about one thing: ``(subjects, body sentences)`` per alert type.
_BANK_ALERT_TYPES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (  # card payment
        ("Card payment of {amount} at {merchant}", "{bank}: transaction alert",
         "Account alert: card ending in {last4}"),
        ("A card payment of {amount} was made at {merchant} on {date}.",
         "Your debit card ending in {last4} was used for a purchase of {amount} at {merchant}.",
         "Merchant: {merchant}. Amount: {amount}. Date: {date}.",
         "If you made this transaction, there is nothing else you need to do.",
         "If you don't recognize this activity, call us using the number on the back of your card.",
         "Pending transactions may take one to two business days to post."),
    ),
    (  # statement
        ("Your {month} statement is available", "Your {bank} e-statement is ready"),
        ("Your {month} statement for the account ending in {last4} is now available in online banking.",
         "Your statement balance was {due} as of {date}.",
         "The minimum payment due is {amount2}, due on {due_date}.",
         "Interest earned this period: {small}.",
         "Log in to online banking or the mobile app to view your full transaction history.",
         "Go paperless: e-statements are kept for seven years."),
    ),
    (  # low balance
        ("Low balance alert for account ending in {last4}", "Your available balance is below {price}"),
        ("Your available balance is {balance}, which is below the alert threshold you set.",
         "Your account ending in {last4} was debited {amount} on {date}.",
         "To avoid overdraft fees, consider transferring funds from your savings account.",
         "Pending transactions may take one to two business days to post.",
         "You can adjust the low balance threshold in alert settings."),
    ),
    (  # new device
        ("New sign-in to your {bank} online banking", "New device added to your profile"),
        ("We noticed a sign-in to online banking from a new device ({device}) in {city} on {date} at {time}.",
         "If this was you, no further action is needed.",
         "If you don't recognize this activity, call us using the number on the back of your card.",
         "You can review trusted devices under Profile and Settings.",
         "Sign-in location is approximate and based on the network used."),
    ),
    (  # transfer / bill payment
        ("Transfer of {amount} completed", "Your scheduled payment to {company} was sent"),
        ("A transfer of {amount} to {first2} {last2} was completed on {date}.",
         "Your payment of {amount} to {company} is scheduled for {date}.",
         "Transaction reference: {ref}.",
         "Your account ending in {last4} was debited {amount} on {date}.",
         "Transfers made after 8 PM Eastern are processed the next business day."),
    ),
    (  # deposit
        ("Direct deposit received: {deposit}", "Your mobile deposit was received"),
        ("A direct deposit of {deposit} from {company} has been credited to your checking account.",
         "Your mobile check deposit of {deposit} has been received and is being reviewed.",
         "Funds are usually available the next business day.",
         "Your available balance is {balance}."),
    ),
    (  # card payment due
        ("Payment reminder: credit card due {due_date}", "Your credit card payment is coming up"),
        ("Your credit card payment of {due} is due on {due_date}.",
         "The minimum payment due is {amount2}.",
         "Set up autopay to avoid late fees on your card ending in {last4}.",
         "If you have already paid, please disregard this reminder."),
    ),
)
_BANK_SUBJECTS = tuple(subject for subjects, _ in _BANK_ALERT_TYPES for subject in subjects)
#: Sentences any legitimate alert may add.
_BANK_GENERIC = (
    "We will never ask for your password, PIN or one-time passcode by email or text.",
    "You can change which alerts you receive in the {bank} app under Settings.",
    "To view this alert, sign in at {bank_domain} rather than following links in email.",
    "Questions? Call the number on the back of your card.",
)
#: Bank-alert wording that phishing copies.
_BANK_BORROWED = (
    "A card payment of {amount} was made at {merchant} on {date}.",
    "We noticed a sign-in to online banking from a new device ({device}) in {city} on {date} at {time}.",
    "If you don't recognize this activity, call us using the number on the back of your card.",
    "Your {month} statement for the account ending in {last4} is now available in online banking.",
    "Your available balance is {balance}, which is below the alert threshold you set.",
    "Transaction reference: {ref}.",
    "Merchant: {merchant}. Amount: {amount}. Date: {date}.",
)
_BANK_OPENERS = (
    "Hello {first},",
    "Dear {first} {last},",
    "Hi {first},",
    "This is an automated alert from {bank}.",
    "{bank} account alert.",
)
_BANK_CLOSERS = (
    "Thank you for banking with {bank}.",
    "{bank} Customer Service",
    "This is an automated message from {bank}. Please do not reply.",
    "Sincerely, the {bank} team.",
)
#: Legal footers that legitimate alerts carry and phishing rarely bothers with.
_BANK_FOOTERS = (
    (
        "You are receiving this alert because you enrolled in {bank} account alerts. "
        "To manage alerts, sign in to online banking. {insurer}. Equal Housing Lender."
    ),
    "Alert preferences can be updated at any time in the {bank} mobile app. {insurer}.",
    "{bank} alerts are sent for your protection. Standard message and data rates may apply. {insurer}.",
    (
        "{insurer}. Please do not reply to this automated alert; "
        "contact us through the message center in online banking."
    ),
)

# --- phishing --------------------------------------------------------------
_PHISH_SUBJECTS = (
    "Action required: verify your {bank} account",
    "Your account has been suspended",
    "Unusual activity detected on your account ending in {last4}",
    "Urgent: confirm your details to avoid account closure",
    "{bank} security notice: unauthorized sign-in attempt",
    "Your online banking access is limited",
    "Final notice: update your billing information",
    "Card payment of {amount} declined - verify now",
    "Important security update for {bank} customers",
)
_PHISH_OPENERS = (
    "Dear valued customer,",
    "Dear {bank} member,",
    "Dear customer,",
    "Hello {first},",
    "Attention account holder,",
)
_PHISH_FILLERS = (
    "We detected unusual activity on your {bank} account ending in {last4}.",
    "Your account has been temporarily suspended until you verify your identity.",
    "Please confirm your details within 24 hours to avoid permanent account closure.",
    "Click the secure link below to verify your account: {phish_url}",
    "Verify now: {phish_url}",
    "Failure to verify will result in your card being permanently locked.",
    "A payment of {amount} was attempted from a new device in {city}.",
    "Log in immediately to review the transaction and restore full access.",
    "For your security, update your billing information and password now.",
    "Our security team flagged a sign-in from an unrecognized device ({device}).",
    "To restore access, confirm your card number, expiration date and PIN.",
    "Your online banking access is limited until you complete verification.",
    "This is an automated security notice from the {bank} fraud department.",
    "We were unable to process your recent payment of {amount} due to incorrect billing information.",
    "Please validate your account information using the form at {phish_url}",
    "If you do not respond, your account will be closed and funds frozen.",
    "Reference number: {ref}. Do not share this reference with anyone.",
    "Update your account details to continue using online banking.",
    "Verification takes less than two minutes.",
)
#: Phishing lines that can hide inside an otherwise faithful copy of a bank alert.
_PHISH_HOOKS = (
    "Review this activity here: {phish_url}",
    "To view this alert, sign in at {phish_url}",
    "If this wasn't you, secure your account: {phish_url}",
)
_PHISH_CLOSERS = (
    "Thank you for banking with {bank}.",
    "{bank} Security Department",
    "Sincerely, {bank} Online Services.",
    "Regards, Account Security Team.",
)

# --- personal --------------------------------------------------------------
_PERSONAL_SUBJECTS = (
    "Dinner on {weekday}?",
    "Re: weekend plans",
    "Meeting notes from {weekday}",
    "Quick question about the {project} project",
    "Photos from {city}",
    "Happy birthday!",
    "Re: {project} timeline",
    "Are you free {weekday}?",
    "Mom's visit",
    "Re: trip to {city}",
    "Lunch tomorrow",
    "Can you review this?",
    "Fwd: {project} draft",
)
_PERSONAL_OPENERS = (
    "Hi {first},",
    "Hey {first}!",
    "{first},",
    "Hello {first},",
    "Hey,",
    "Morning {first},",
)
_PERSONAL_FILLERS = (
    "Are you still up for dinner on {weekday} at {place}?",
    "I can book a table for seven if that works for you.",
    "I uploaded the photos from our trip to {city}, let me know which ones you like.",
    "The kids had a great time at the park on {weekday}.",
    "Mom says she will arrive on {date} and stay for the weekend.",
    "Could you pick up some groceries on your way home?",
    "I moved our meeting with {first2} to {weekday} at {time}.",
    "Here are my notes from the {project} meeting, mostly about the budget and the timeline.",
    "Can you take a look at the slides before {weekday}? I attached the latest draft.",
    "{first2} asked whether we could push the {project} deadline by a week.",
    "Let me know what you think about the proposal for {company}.",
    "It was really good to see you last week.",
    "We should plan a hiking trip before the summer is over.",
    "I'm running about ten minutes late, sorry!",
    "Did you get a chance to call the plumber?",
    "Happy birthday! I hope you have a wonderful day with the family.",
    "Thanks for helping me move last weekend, I owe you one.",
    "I think {place} is closed on {weekday}, so maybe we try somewhere else.",
    "The report for {company} is almost done, I just need the numbers from {first2}.",
    "Are we still on for coffee at {time}?",
    "My flight lands in {city} at {time} on {weekday}.",
    "Don't forget to bring the charger, I left mine at the office.",
    "I spoke with {first2} {last2} and they're happy to join the call.",
    "How is your new job going? Tell me everything.",
    "The dog has been sleeping on the couch all day.",
    "I'll send you the address later today.",
    "We spent about {amount} on the tickets, so you can pay me back whenever.",
    "Shall I reserve the cabin near {city} for the long weekend?",
)
#: Personal lines that happen to use spammy words.
_PERSONAL_SPAMMY = (
    "I finally won something: {amount} in the office raffle!",
    "Found a great deal on flights to {city}, {pct}% off if we book before {weekday}.",
    "Can you send me {amount} for the concert tickets? No rush.",
    "My cousin keeps pushing some crypto investment on me, it sounds too good to be true.",
    "They are giving away free samples at the new store downtown.",
    "I've lost {n} pounds since I started running, feeling great.",
    "The bank called about a weird charge on my card, so I had to cancel it.",
    "Don't forget to claim your free coffee with the loyalty card.",
    "Only a few seats left for the cooking class, should we sign up now?",
    "Mom got one of those 'you won a prize' calls again, can you talk to her?",
)
_PERSONAL_CLOSERS = (
    "Cheers, {sender_first}",
    "Best, {sender_first}",
    "Love, {sender_first}",
    "Thanks, {sender_first}",
    "See you soon, {sender_first}",
    "- {sender_first}",
    "Sent from my phone",
)

# --- newsletter ------------------------------------------------------------
_NEWS_SUBJECTS = (
    "{brand}: {headline}",
    "This week in {topic}: {headline}",
    "{headline}",
    "Your {weekday} briefing from {brand}",
    "{brand} #{issue}: {headline}",
    "The best of {topic} this month",
    "{brand} digest: {n} stories you missed",
)
_NEWS_OPENERS = (
    "Welcome to issue #{issue} of {brand}.",
    "Good morning, readers.",
    "Hi {first}, here is your weekly roundup from {brand}.",
    "In this edition of {brand}:",
    "Thanks for reading {brand}.",
)
_NEWS_FILLERS = (
    "Top story: {headline}. Read more at {news_url}",
    "{headline}. Our editors explain what it means for you.",
    "Also this week: {headline2}.",
    "We talked to researchers at {company} about the future of {topic}.",
    "Reader question of the week: how do I get started with {topic}?",
    "Our latest podcast episode covers {topic} with guest {first2} {last2}.",
    "Don't miss the community event in {city} on {date}.",
    "In case you missed it: {n} lessons from a decade of {topic}.",
    "Last week's most-read article was about {topic} in {city}.",
    "Upcoming webinar: an introduction to {topic}, hosted by {first2} {last2}.",
    "Read the full analysis on our website.",
    "Members get early access to every article and our monthly deep dive.",
    "Forward this email to a friend who might enjoy it.",
    "Chart of the week: how {topic} changed over the last {n} years.",
    "From the archive: our {year} guide to {topic}.",
    "Quick links: {headline2}; a conversation with {first2} {last2}; and reader letters.",
)
#: Newsletter lines (sponsored blurbs, giveaways) that use spammy words.
_NEWS_SPAMMY = (
    "Special offer for subscribers: get {pct}% off an annual membership, limited time only.",
    "Giveaway: one lucky reader wins a free {product}. Click here to enter.",
    "Health: the truth about weight loss pills and miracle diets.",
    "Money: how to spot a loan scam and avoid bad credit traps.",
    "Sponsored: earn cash back on every purchase with the {company} card. Apply now.",
    "Act now: early bird tickets for our {topic} summit are {pct}% off until {date}.",
    "Sponsored: {company} is offering readers an exclusive {pct}% discount. Claim your free trial today.",
    "Sponsored: win a free ticket to our annual {topic} conference. Enter before {date}.",
)
_NEWS_CLOSERS = (
    "You are receiving this because you subscribed to {brand}. Unsubscribe or manage your preferences at {news_url}",
    "Unsubscribe | Manage preferences | View in browser",
    "{brand}, {street}, {city}. To stop receiving these emails, unsubscribe here.",
    "Thanks for reading. See you next week. - {brand}",
)

# --- promo -----------------------------------------------------------------
_PROMO_SUBJECTS = (
    "{pct}% off {product} this weekend only",
    "Free shipping on all orders - ends {weekday}",
    "{retailer} Summer Sale starts now",
    "New arrivals in {product}",
    "{first}, your member rewards are waiting",
    "Limited time offer on {product}",
    "Flash sale: {product} from {price}",
    "Thanks for shopping with {retailer}: here's {pct}% off your next order",
)
_PROMO_OPENERS = (
    "Hi {first},",
    "Hello {first}, as a valued member,",
    "Shop the sale at {retailer}.",
    "It's here!",
    "Our biggest sale of the season is on.",
)
_PROMO_FILLERS = (
    "Save up to {pct}% on {product} and {product2}.",
    "Use code {code} at checkout for an extra {pct2}% off.",
    "Enjoy free shipping on orders over {price}.",
    "This limited time offer ends {weekday} at midnight.",
    "Shop now: {shop_url}",
    "Members earn double reward points on every purchase this week.",
    "Free returns within 30 days, no questions asked.",
    "New arrivals in {product} are now in stores and online.",
    "Visit your nearest {retailer} store in {city} or shop online.",
    "Bestsellers are selling fast, so don't wait.",
    "Discount applied automatically at checkout. Exclusions apply.",
    "Buy one, get one 50% off on selected {product}.",
    "Your coupon {code} is valid until {date}.",
    "Get {off} off when you spend {spend} or more.",
    "Order by {weekday} for guaranteed delivery before the weekend.",
    "Our customers rated these {product} 4.8 out of 5 stars.",
    "Download the {retailer} app for exclusive deals.",
    "Gift cards available in any amount.",
    "Act fast: clearance prices on {product} while supplies last.",
)
_PROMO_CLOSERS = (
    "You are receiving this email because you signed up at {retailer_domain}. Unsubscribe | Privacy policy",
    "Happy shopping, the {retailer} team.",
    "{retailer}, {street}, {city}. Unsubscribe from marketing emails.",
    "Prices and availability subject to change. Unsubscribe anytime.",
)

# --- spam --------------------------------------------------------------------
_SPAM_OPENERS = ("Dear friend,", "Hello,", "Hi {first},", "Dear customer,", "Attention:", "Greetings!")
#: ``(subjects, body sentences)`` per spam theme.
_SPAM_THEMES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (  # 0: pharma
        ("Cheap meds online, no prescription needed", "Save {pct}% on V1agra and Cialis",
         "Your pharmacy order is ready", "Best prices on brand medications"),
        ("Buy generic Viagra, Cialis and Levitra at the lowest prices online.",
         "No prescription required, discreet packaging and overnight delivery.",
         "Our licensed Canadian pharmacy ships worldwide.",
         "Boost your performance and confidence with our herbal pills.",
         "Order {n} pills and get {n2} more absolutely free.",
         "Pain relief, sleep aids and weight control pills at wholesale prices."),
    ),
    (  # 1: loans
        ("You are pre-approved for a {loan} loan", "Bad credit? Get cash today",
         "Consolidate your debt now", "Loan approval notice #{ref}"),
        ("You have been pre-approved for a personal loan of up to {loan} with no credit check.",
         "Get cash deposited in your account within 24 hours, even with bad credit.",
         "Lower your monthly payments and consolidate all your debt into one easy loan.",
         "Rates as low as {small_pct}% APR, apply in minutes.",
         "No paperwork, no fees, instant approval.",
         "Thousands of customers in {city} already got their money."),
    ),
    (  # 2: weight loss
        ("Lose {n} pounds in {n2} days", "Doctors hate this simple trick",
         "The miracle diet pill everyone is talking about", "Melt belly fat while you sleep"),
        ("Lose {n} pounds in just {n2} days without diet or exercise.",
         "This miracle supplement burns fat while you sleep.",
         "Celebrities in {city} swear by this one weird trick.",
         "Clinically proven formula, 100% natural and risk free.",
         "Order your free trial bottle today, just pay shipping.",
         "Doctors don't want you to know about this breakthrough."),
    ),
    (  # 3: lottery / prize
        ("Congratulations! You have won {big_amount}", "Claim your prize now",
         "You have been selected as our lucky winner", "Final notification: unclaimed winnings"),
        ("Congratulations! Your email address has won {big_amount} in the international online lottery.",
         "To claim your prize, reply with your full name, address and phone number.",
         "You have been selected to receive a brand new iPhone and a {price} gift card.",
         "Your winning reference number is {ref}.",
         "Contact our claims agent {first2} {last2} immediately to release your funds.",
         "A small processing fee is required to transfer the winnings to your account."),
    ),
    (  # 4: dating
        ("Lonely singles in {city} want to meet you", "{first2} sent you a private message",
         "Someone likes your profile", "Hot local singles near you"),
        ("Hundreds of lonely singles in {city} are waiting to chat with you tonight.",
         "{first2} viewed your profile and sent you a private message.",
         "Create your free account and see who is interested in you.",
         "No credit card required, meet real people near you.",
         "Hot and discreet, 100% anonymous.",
         "See her photos now: {spam_url}"),
    ),
    (  # 5: work from home / money
        ("Make {price} a day from home", "Earn extra cash with this simple system",
         "Your financial freedom starts today", "Secret method to double your income"),
        ("Earn {price} per day working from home just a few hours a week.",
         "No experience needed, our proven system does all the work.",
         "Join thousands of people who quit their jobs and earn passive income.",
         "This secret method made me {big_amount} last month.",
         "Spots are limited, so register now before the offer closes.",
         "Invest once and watch your money grow with guaranteed profits."),
    ),
    (  # 6: replica / discount goods
        ("Designer watches at {pct}% off", "Replica bags, huge discount",
         "Clearance: Ray-Ban sunglasses from {price}", "{pct}% off everything, today only"),
        ("Luxury replica watches and designer handbags at up to {pct}% off.",
         "Top quality, indistinguishable from the original.",
         "Free shipping worldwide on all orders today only.",
         "Use coupon {code} for an extra discount at checkout.",
         "Shop the clearance sale now: {spam_url}",
         "Limited stock, huge savings on brand name products."),
    ),
    (  # 7: ordinary-looking business spam
        ("Invoice #{ref}", "Document shared with you", "Delivery failed: action needed",
         "Business proposal", "Re: payment"),
        ("Please find the invoice attached and confirm payment by {weekday}.",
         "Your package could not be delivered, please confirm your address: {spam_url}",
         "{first2} shared a document with you: {spam_url}",
         "Kindly review the attached file and get back to me today.",
         "We have a business proposal that could interest your company.",
         "I am reaching out regarding the partnership we discussed last week.",
         "Open the attachment to view the payment details."),
    ),
    (  # 8: personal-looking spam
        ("Re: our conversation", "Quick favor", "Re: photos", "Are you available?"),
        ("Can you buy some gift cards for me today? I will pay you back tonight.",
         "I'm in a meeting right now, just reply to this email.",
         "My friend made so much money with this, you should really check it out.",
         "Sorry for the random message, I found your photos on this website: {spam_url}",
         "It only takes a minute: {spam_url}",
         "I'm traveling right now and can't access my account."),
    ),
)
_THEME_MONEY, _THEME_DISCOUNT, _THEME_BUSINESS, _THEME_PERSONAL = 5, 6, 7, 8
#: Spam hooks mixed into spam that otherwise copies ham wording.
_SPAM_PERSONAL_HOOKS = _SPAM_THEMES[_THEME_PERSONAL][1]
_SPAM_DISCOUNT_HOOKS = _SPAM_THEMES[_THEME_DISCOUNT][1]
#: Generic spam sentences sprinkled into every theme.
_SPAM_FILLERS = (
    "Act now!",
    "This offer expires at midnight.",
    "100% guaranteed or your money back.",
    "Click here to claim: {spam_url}",
    "Don't miss this once in a lifetime opportunity.",
    "Limited time offer, reply today.",
    "You have been specially selected for this offer.",
    "No obligation, no risk, totally free.",
    "Call now: {phone}",
    "Visit {spam_url} for details.",
    "Hurry, only {n} spots left!",
    "Why pay more?",
    "This is not spam, you are receiving this because you opted in.",
)
_SPAM_CLOSERS = (
    "To unsubscribe, reply with REMOVE in the subject line.",
    "Best regards, {first2}",
    "Click here to be removed from our mailing list.",
    "Sincerely, {first2} {last2}",
    "",
)

# --- campaign (the attacker) ------------------------------------------------
_CAMPAIGN_SUBJECTS = (
    "ZentraCoin presale: last {n} whitelist spots",
    "{first}, turn {price} into {big_amount} with ZentraCoin",
    "The AI trading bot banks don't want you to know about",
    "Zentra Capital: {pct}% returns in {n2} days",
    "Early investor invitation: ZentraCoin",
    "Your ZentraCoin wallet bonus is waiting",
    "Final call: ZentraCoin token launch",
    "Why smart investors are moving to ZentraCoin",
)
_CAMPAIGN_OPENERS = (
    "Hi {first},",
    "Dear investor,",
    "Hello {first}, you have been selected.",
    "Dear friend,",
    "Attention {first}:",
)
_CAMPAIGN_FILLERS = (
    "ZentraCoin is the first token powered by our AI trading engine.",
    "Early investors have already seen returns of {pct}% in {n2} days.",
    "Stake your ZentraCoin and earn up to {apy}% APY, paid out daily.",
    "The presale closes in {n} hours and whitelist spots are limited.",
    "Join {big} investors who are already earning passive income with Zentra.",
    "{first2} from {city} turned {price} into {big_amount} in just {n2} weeks.",
    "Our algorithm trades around the clock so you don't have to.",
    "Guaranteed profits, zero risk, withdraw anytime.",
    "Connect your wallet and claim your {pct2}% bonus tokens: {campaign_url}",
    "Secure your ZentraCoin before the price goes up: {campaign_url}",
    "Minimum investment is only {price}.",
    "Don't miss the next Bitcoin, act now while the price is low.",
    "Banks don't want you to know about this opportunity.",
    "Featured in major financial news, ZentraCoin is the fastest growing crypto project of {year}.",
    "Invite a friend and get {price} in free ZentraCoin.",
    "Zentra Capital is fully audited and your funds are protected.",
    "Reply to this email and our account manager will help you get started.",
    "This limited time offer is only available to selected members.",
)
_CAMPAIGN_CLOSERS = (
    "To your financial freedom, {first2} {last2}, Zentra Capital",
    "The ZentraCoin Team",
    "Best regards, the Zentra investor relations team.",
    "Crypto investing involves risk. Unsubscribe from Zentra updates here.",
)

# ---------------------------------------------------------------------------
# Small pools that do not need Faker
# ---------------------------------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DEVICES = ("iPhone 15", "Samsung Galaxy S23", "Windows PC", "MacBook Pro", "Pixel 8", "iPad",
            "Chrome on Windows", "Safari on Mac", "Firefox on Linux")
_PRODUCTS = ("running shoes", "winter jackets", "kitchen appliances", "bedding", "jeans", "sneakers",
             "headphones", "laptops", "sofas", "outdoor furniture", "skincare", "handbags", "watches",
             "kids' clothing", "cookware", "office chairs", "lamps", "rugs", "swimwear", "backpacks",
             "smart speakers", "gardening tools", "dresses", "t-shirts", "coffee makers")
_TOPICS = ("technology", "gardening", "personal finance", "cooking", "travel", "science", "local news",
           "parenting", "photography", "climate", "startups", "health", "fitness", "books", "design",
           "history", "music", "film", "investing", "education", "architecture", "software engineering")
_HEADLINE_TEMPLATES = (
    "{n} ways to get better at {topic}",
    "Why {topic} matters more than ever",
    "Inside {company}'s new approach to {topic}",
    "What we learned about {topic} this year",
    "A beginner's guide to {topic}",
    "The quiet revolution in {topic}",
    "How {city} is rethinking {topic}",
    "Is {topic} overrated? Our readers weigh in",
    "The {topic} trends to watch",
    "{n} books about {topic} worth your time",
)
_PLACES = ("Luigi's", "the Thai place", "Blue Door Cafe", "the new ramen bar", "Rosa's Kitchen",
           "the brewery", "Harbor Grill", "our usual spot", "the taco truck", "Olive & Vine")
_PROJECTS = ("Atlas", "Q3 budget", "website redesign", "onboarding", "Phoenix", "migration",
             "annual report", "Orion", "hiring", "marketing plan", "data pipeline", "office move")
_NEWS_SUFFIXES = ("Weekly", "Digest", "Dispatch", "Brief", "Insider", "Review", "Journal",
                  "Letter", "Roundup", "Post", "Daily", "Bulletin")
_RETAIL_KINDS = ("Outfitters", "Home", "Supply", "Market", "Apparel", "Living", "Sports", "Goods",
                 "Beauty", "Electronics")
_RETAIL_SUFFIXES = ("", "store", "shop", "outlet", "home", "goods")
_EXTRA_MERCHANTS = ("Corner Market", "City Fuel", "Green Grocer", "Metro Transit", "Daily Grind Coffee",
                    "QuickMart", "Cinema Plaza", "Pine Street Pharmacy", "Sunrise Bakery", "Online Marketplace")
_COMPANY_SUFFIX = re.compile(r",?\s+(Inc|LLC|Ltd|PLC|Group|and Sons)\.?$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

_BLOCK = 4096  # uniforms drawn from the generator at a time

_Pool = tuple[str, ...]
_Extras = tuple[tuple[float, _Pool], ...]


def _slug(text: str) -> str:
    """Lower-case alphanumeric form of a name, for domains and addresses."""
    return _NON_ALNUM.sub("", text.lower().replace(" and ", " "))


def _clean_company(text: str) -> str:
    """Drop a trailing legal suffix (``Inc``, ``LLC``, ...) from a company name."""
    return _COMPANY_SUFFIX.sub("", text).strip(" ,")


class _Slots(dict):
    """Template mapping that draws a value on the first use of each placeholder."""

    __slots__ = ("_fns",)

    def __init__(self, fns: dict[str, Callable[[], str]], fixed: dict[str, str]) -> None:
        super().__init__(fixed)
        self._fns = fns

    def __missing__(self, key: str) -> str:
        value = self._fns[key]()
        self[key] = value
        return value


class SyntheticMailFactory:
    """Seeded generator of realistic synthetic emails for every category.

    Parameters
    ----------
    seed : int
        Seed of the factory's own ``numpy.random.Generator`` and of its own
        ``faker.Faker`` instance (``seed_instance``). No global random state
        is used, so the same seed and the same sequence of :meth:`make` calls
        yield identical emails.

    Attributes
    ----------
    seed : int
        The seed the factory was built with.

    Notes
    -----
    Pools (300 people, 200 companies, 100 cities, 50 newsletter brands, 60
    retailers, throwaway spam domains, amounts, dates, ...) are drawn once at
    construction. :meth:`make` only fills templates, using uniforms pre-drawn
    from the generator in blocks of 4096.

    Examples
    --------
    >>> factory = SyntheticMailFactory(seed=7)
    >>> alert = factory.make("bank_alert", "e1")
    >>> alert.is_spam, alert.category, alert.sender.split("@")[1] in BANK_DOMAINS
    (False, 'bank_alert', True)
    >>> SyntheticMailFactory(seed=7).make("bank_alert", "e1") == alert
    True
    >>> factory.make("campaign", "e2").sender.split("@")[1] in CAMPAIGN_DOMAINS
    True
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._uniforms: Iterator[float] = iter(())
        fake = faker.Faker()
        fake.seed_instance(seed)
        rng = self._rng

        def choose(seq):
            return seq[int(rng.integers(len(seq)))]

        people: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        while len(people) < 300:
            person = (fake.first_name(), fake.last_name())
            if person not in seen:
                seen.add(person)
                people.append(person)
        self._people = tuple(people)
        self._companies = tuple(fake.company() for _ in range(200))
        self._cities = tuple(fake.city() for _ in range(100))
        self._streets = tuple(fake.street_address() for _ in range(50))
        self._phones = tuple(f"1-{a}-{b}-{c:04d}" for a, b, c in zip(
            rng.integers(200, 999, 50).tolist(), rng.integers(200, 999, 50).tolist(),
            rng.integers(0, 9999, 50).tolist()))

        # Newsletter brands: (name, domain, main topic).
        brands = []
        for _ in range(50):
            last, suffix = fake.last_name(), choose(_NEWS_SUFFIXES)
            brands.append((f"The {last} {suffix}", f"{_slug(last)}{suffix.lower()}.com", choose(_TOPICS)))
        self._brands = tuple(brands)

        # Retailers: (display name, domain), built from company names.
        retailers = []
        for company in self._companies[:60]:
            base = _clean_company(company).split(",")[0].split(" and ")[0]
            retailers.append((f"{base} {choose(_RETAIL_KINDS)}", f"{_slug(base)}{choose(_RETAIL_SUFFIXES)}.com"))
        self._retailers = tuple(retailers)
        self._merchants = self._companies[60:100] + _EXTRA_MERCHANTS
        self._work_domains = tuple(f"{_slug(_clean_company(c))}.com" for c in self._companies[100:160])

        # Throwaway spam domains such as "cashvip27.xyz".
        spam_domains = []
        for _ in range(150):
            digits = str(int(rng.integers(10, 999))) if rng.random() < 0.4 else ""
            spam_domains.append(f"{choose(_THROWAWAY_WORDS)}{choose(_THROWAWAY_WORDS)}{digits}."
                                f"{choose(_THROWAWAY_TLDS)}")
        self._spam_domains = tuple(spam_domains)

        # Money, dates and identifiers.
        self._amounts = tuple(f"${a:,.2f}" for a in rng.lognormal(4.0, 1.1, 600).tolist())
        self._big_amounts = tuple(f"${a:,.0f}" for a in np.round(rng.lognormal(9.5, 0.9, 200), -2).tolist())
        self._small = tuple(f"${a:.2f}" for a in rng.uniform(0.01, 15, 100).tolist())
        self._prices = tuple(f"${p}" for p in (5, 10, 15, 19, 20, 25, 29, 49, 50, 75, 99, 100, 150, 200, 250, 500))
        self._dates = tuple(fake.date_between_dates(date(2024, 1, 1), date(2024, 12, 31))
                            .strftime("%B %d, %Y").replace(" 0", " ") for _ in range(200))
        self._times = tuple(f"{(h % 12) or 12}:{m:02d} {'AM' if h < 12 else 'PM'}"
                            for h in range(24) for m in (0, 5, 12, 17, 25, 30, 41, 45, 52))
        self._codes = tuple(f"{w}{n}" for w, n in zip(
            ("SAVE", "SPRING", "SUMMER", "FALL", "WELCOME", "VIP", "EXTRA", "DEAL", "THANKS", "SHIP"),
            (10, 15, 20, 25, 30, 35, 40, 15, 10, 50)))
        # Account endings of the mailbox population (what genuine alerts quote).
        self._accounts = tuple(f"{a:04d}" for a in rng.choice(10000, size=40, replace=False).tolist())
        letters = rng.integers(0, 26, size=(200, 2)).tolist()
        self._refs = tuple(f"{chr(65 + a)}{chr(65 + b)}{n // 1000:05d}-{n % 1000:03d}"
                           for (a, b), n in zip(letters, rng.integers(0, 10**8, 200).tolist(), strict=True))
        self._hexes = tuple(f"{h:012x}" for h in rng.integers(0, 2**48, 200).tolist())
        self._url_slugs = tuple(fake.slug() for _ in range(200))

        # Newsletter context read by the "headline" and "news_url" slots.
        self._cur_domain, self._cur_topic = "example.com", _TOPICS[0]
        self._fns = self._slot_functions()
        self._makers: dict[str, Callable[[str], Email]] = {
            "personal": self._make_personal,
            "newsletter": self._make_newsletter,
            "bank_alert": self._make_bank_alert,
            "promo": self._make_promo,
            "spam": self._make_spam,
            "phishing": self._make_phishing,
            "campaign": self._make_campaign,
        }

    # -- randomness -----------------------------------------------------------
    def _u(self) -> float:
        """Next uniform in ``[0, 1)`` from the pre-drawn block."""
        try:
            return next(self._uniforms)
        except StopIteration:
            self._uniforms = iter(self._rng.random(_BLOCK).tolist())
            return next(self._uniforms)

    def _pick(self, seq):
        return seq[int(self._u() * len(seq))]

    def _int(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]``."""
        return low + int(self._u() * (high - low + 1))

    def _heavy(self, category: str) -> bool:
        """Whether this email is written mostly with cross-class shared wording."""
        return self._u() < P_HEAVY[category]

    def _slot_functions(self) -> dict[str, Callable[[], str]]:
        pick, i = self._pick, self._int
        people, companies, cities = self._people, self._companies, self._cities

        def spam_url() -> str:
            scheme = "https" if self._u() < 0.7 else "http"
            word = pick(self._url_slugs).split("-")[0]
            return pick(_SPAM_URL_FORMATS).format(scheme, pick(self._spam_domains), word, pick(self._hexes))

        def headline() -> str:
            return pick(_HEADLINE_TEMPLATES).format(
                n=i(3, 12), topic=self._cur_topic if self._u() < 0.7 else pick(_TOPICS),
                company=pick(companies), city=pick(cities))

        return {
            "first": lambda: pick(people)[0],
            "last": lambda: pick(people)[1],
            "first2": lambda: pick(people)[0],
            "last2": lambda: pick(people)[1],
            "company": lambda: pick(companies),
            "city": lambda: pick(cities),
            "street": lambda: pick(self._streets),
            "phone": lambda: pick(self._phones),
            "amount": lambda: pick(self._amounts),
            "amount2": lambda: pick(self._amounts),
            "balance": lambda: pick(self._amounts),
            "deposit": lambda: pick(self._amounts),
            "due": lambda: pick(self._amounts),
            "due_date": lambda: pick(self._dates),
            "small": lambda: pick(self._small),
            "big": lambda: f"{i(2, 90) * 1000:,}",
            "price": lambda: pick(self._prices),
            "off": lambda: pick(("$10", "$15", "$20", "$25", "$40")),
            "spend": lambda: pick(("$75", "$100", "$150", "$200")),
            "loan": lambda: f"${i(2, 50) * 500:,}",
            "big_amount": lambda: pick(self._big_amounts),
            "pct": lambda: str(5 * i(2, 14)),
            "pct2": lambda: str(5 * i(1, 6)),
            "small_pct": lambda: f"{i(19, 99) / 10:.1f}",
            "apy": lambda: str(i(12, 480)),
            "n": lambda: str(i(3, 50)),
            "n2": lambda: str(i(7, 60)),
            "issue": lambda: str(i(12, 420)),
            "year": lambda: str(i(2019, 2024)),
            "date": lambda: pick(self._dates),
            "time": lambda: pick(self._times),
            "weekday": lambda: pick(_WEEKDAYS),
            "month": lambda: pick(_MONTHS),
            "last4": lambda: f"{i(0, 9999):04d}",
            "ref": lambda: pick(self._refs),
            "code": lambda: pick(self._codes),
            "merchant": lambda: pick(self._merchants),
            "device": lambda: pick(_DEVICES),
            "place": lambda: pick(_PLACES),
            "project": lambda: pick(_PROJECTS),
            "product": lambda: pick(_PRODUCTS),
            "product2": lambda: pick(_PRODUCTS),
            "topic": lambda: pick(_TOPICS),
            "headline": headline,
            "headline2": headline,
            "news_url": lambda: f"https://{self._cur_domain}/{pick(self._url_slugs)}",
            "spam_url": spam_url,
            "share_url": lambda: f"{'http' if self._u() < 0.3 else 'https'}://{pick(_SHARE_HOSTS)}/{pick(self._hexes)}",
        }

    # -- assembly -------------------------------------------------------------
    def _compose(self, email_id: str, category: str, sender: str, fixed: dict[str, str],
                 subjects: _Pool, openers: _Pool, closers: _Pool, fillers: _Pool,
                 extras: _Extras = (), footers: _Pool = ()) -> Email:
        """Fill a subject, an opener, sentences up to a random length and a closer.

        Each body sentence comes from the first pool of ``extras`` whose
        probability the draw falls into, otherwise from ``fillers``. No
        sentence template is used twice in one email. The body (footer
        included) aims at a uniform random length of 20 to 120 words.
        """
        u = self._u
        slots = _Slots(self._fns, fixed)
        subject = subjects[int(u() * len(subjects))].format_map(slots)
        opener = openers[int(u() * len(openers))].format_map(slots)
        closer = closers[int(u() * len(closers))].format_map(slots)
        footer = footers[int(u() * len(footers))].format_map(slots) if footers else ""
        target = 20 + int(u() * 101)
        words = opener.count(" ") + closer.count(" ") + footer.count(" ") + 3
        parts = [opener]
        used: set[str] = set()
        rest = max(1.0 - sum(p for p, _ in extras), 1e-9)
        for _ in range(40):
            if words >= target and len(parts) > 1:
                break
            # One uniform picks the pool, its rescaled remainder the sentence.
            r = u()
            for p, extra in extras:
                if r < p:
                    pool, r = extra, r / p
                    break
                r -= p
            else:
                pool, r = fillers, r / rest
            template = pool[min(int(r * len(pool)), len(pool) - 1)]
            if template in used:
                continue
            used.add(template)
            sentence = template.format_map(slots)
            parts.append(sentence)
            words += sentence.count(" ") + 1
        if closer:
            parts.append(closer)
        if footer:
            parts.append(footer)
        return Email(email_id, sender, subject, " ".join(parts), category)

    def _person_address(self, first: str, last: str, domains: _Pool) -> str:
        f, l_ = _slug(first) or "me", _slug(last) or "mail"
        local = (f"{f}.{l_}", f"{f}{l_}{self._int(1, 99)}", f"{f[0]}{l_}", f"{f}_{l_}")[int(self._u() * 4)]
        return f"{local}@{self._pick(domains)}"

    # -- ham ------------------------------------------------------------------------
    def _make_bank_alert(self, email_id: str) -> Email:
        bank, domain = self._pick(BANKS)
        sender = f"{self._pick(('alerts', 'notifications', 'noreply', 'statements', 'alerts'))}@{domain}"
        insurer = "Federally insured by NCUA" if "Credit Union" in bank else "Member FDIC"
        subjects, body = self._pick(_BANK_ALERT_TYPES)
        # Real alerts quote the customer's actual account; phishers have to guess.
        fixed = {"bank": bank, "bank_domain": domain, "insurer": insurer, "last4": self._pick(self._accounts)}
        return self._compose(email_id, "bank_alert", sender, fixed,
                             subjects, _BANK_OPENERS, _BANK_CLOSERS, body,
                             ((0.25, _BANK_GENERIC), (0.05, _SHARED)), _BANK_FOOTERS if self._u() < 0.95 else ())

    def _make_personal(self, email_id: str) -> Email:
        first, last = self._pick(self._people)
        sender = self._person_address(first, last, _FREEMAIL if self._u() < 0.6 else self._work_domains)
        fixed = {"sender_first": first, "link_url": self._fns["share_url"]()}
        if self._heavy("personal"):
            return self._compose(email_id, "personal", sender, fixed, _CHAT_SUBJECTS, _PERSONAL_OPENERS,
                                 _PERSONAL_CLOSERS, _CHAT, ((0.2, _PERSONAL_SPAMMY), (0.1, _SHARED)))
        return self._compose(email_id, "personal", sender, fixed, _PERSONAL_SUBJECTS, _PERSONAL_OPENERS,
                             _PERSONAL_CLOSERS, _PERSONAL_FILLERS,
                             ((0.15, _CHAT), (0.05, _PERSONAL_SPAMMY), (0.08, _SHARED)))

    def _make_newsletter(self, email_id: str) -> Email:
        brand, domain, topic = self._pick(self._brands)
        self._cur_domain, self._cur_topic = domain, topic
        sender = f"{self._pick(('newsletter', 'hello', 'editors', 'news', 'digest'))}@{domain}"
        fixed = {"brand": brand, "link_url": self._fns["news_url"]()}
        if self._heavy("newsletter"):
            return self._compose(email_id, "newsletter", sender, fixed, _MONEY_SUBJECTS, _MONEY_OPENERS,
                                 _MONEY_CLOSERS, _MONEY, ((0.1, _NEWS_SPAMMY), (0.1, _SHARED)))
        money = 0.1 if topic in ("personal finance", "investing", "startups") else 0.0
        return self._compose(email_id, "newsletter", sender, fixed, _NEWS_SUBJECTS, _NEWS_OPENERS,
                             _NEWS_CLOSERS, _NEWS_FILLERS,
                             ((0.08, _NEWS_SPAMMY), (money, _MONEY), (0.06, _SHARED)))

    def _make_promo(self, email_id: str) -> Email:
        retailer, domain = self._pick(self._retailers)
        sender = f"{self._pick(('deals', 'offers', 'news', 'hello', 'shop'))}@{domain}"
        fixed = {"retailer": retailer, "retailer_domain": domain,
                 "shop_url": f"https://www.{domain}/{self._pick(('sale', 'deals', 'new', 'offers', 'clearance'))}"}
        if self._heavy("promo"):
            return self._compose(email_id, "promo", sender, fixed, _MARKETING_SUBJECTS, _MARKETING_OPENERS,
                                 _MARKETING_CLOSERS, _MARKETING, ((0.1, _SHARED),))
        return self._compose(email_id, "promo", sender, fixed, _PROMO_SUBJECTS, _PROMO_OPENERS,
                             _PROMO_CLOSERS, _PROMO_FILLERS, ((0.05, _MARKETING), (0.06, _SHARED)))

    # -- spam -------------------------------------------------------------------------
    def _make_spam(self, email_id: str) -> Email:
        theme = int(self._u() * len(_SPAM_THEMES))
        subjects, body = _SPAM_THEMES[theme]
        ordinary = theme in (_THEME_BUSINESS, _THEME_PERSONAL)
        first = ""
        if ordinary or self._u() < 0.15:
            first, last = self._pick(self._people)
            sender = self._person_address(first, last, _FREEMAIL)
        else:
            local = self._pick(("info", "offers", "support", "admin", "winner", "sales", "service", "no-reply"))
            sender = f"{local}@{self._pick(self._spam_domains)}"
        spam_url = self._fns["spam_url"]()
        fixed = {"sender_first": first, "spam_url": spam_url, "shop_url": spam_url, "link_url": spam_url}
        openers, closers = (_PERSONAL_OPENERS, _PERSONAL_CLOSERS) if ordinary else (_SPAM_OPENERS, _SPAM_CLOSERS)
        extras: _Extras = ((0.25, _SPAM_FILLERS), (0.15, _MARKETING), (0.06, _SHARED))
        if theme == 1:  # loans talk money too
            extras = ((0.2, _SPAM_FILLERS), (0.2, _MONEY), (0.06, _SHARED))
        elif theme == _THEME_PERSONAL:
            if self._heavy("spam"):
                subjects, body = _CHAT_SUBJECTS, _CHAT
                extras = ((0.3, _PERSONAL_FILLERS), (0.1, _SPAM_PERSONAL_HOOKS), (0.05, _SHARED))
            else:
                extras = ((0.2, _CHAT), (0.1, _SHARED), (0.05, _SPAM_FILLERS))
        elif theme == _THEME_BUSINESS:
            extras = ((0.2, _SHARED), (0.1, _CHAT), (0.05, _SPAM_FILLERS))
        elif theme == _THEME_DISCOUNT:
            if self._heavy("spam"):
                subjects, openers, closers, body = (_MARKETING_SUBJECTS, _MARKETING_OPENERS,
                                                    _MARKETING_CLOSERS, _MARKETING)
                extras = ((0.15, _SPAM_DISCOUNT_HOOKS), (0.08, _SHARED))
            else:
                extras = ((0.5, _MARKETING), (0.15, _SPAM_FILLERS))
        elif theme == _THEME_MONEY:
            if self._heavy("spam"):
                subjects, openers, closers, body = _MONEY_SUBJECTS, _MONEY_OPENERS, _MONEY_CLOSERS, _MONEY
                extras = ((0.25, _SPAM_THEMES[_THEME_MONEY][1]), (0.08, _SHARED))
            else:
                extras = ((0.3, _MONEY), (0.25, _SPAM_FILLERS))
        return self._compose(email_id, "spam", sender, fixed, subjects, openers, closers, body, extras)

    def _make_phishing(self, email_id: str) -> Email:
        if self._u() < 0.6:  # one of "our" banks, otherwise another institution
            k = int(self._u() * len(BANKS))
            bank, lookalikes = BANKS[k][0], PHISHING_DOMAINS[k]
        else:
            bank, lookalikes = self._pick(_OTHER_PHISH_TARGETS)
        domain = self._pick(lookalikes) if self._u() < 0.8 else self._pick(self._spam_domains)
        sender = f"{self._pick(('security', 'alert', 'support', 'service', 'verify', 'noreply'))}@{domain}"
        scheme = "https" if self._u() < 0.5 else "http"
        fixed = {"bank": bank,
                 "phish_url": f"{scheme}://{self._pick(lookalikes)}/"
                              f"{self._pick(_PHISH_URL_PATHS).format(self._pick(self._hexes))}"}
        if self._heavy("phishing"):
            return self._compose(email_id, "phishing", sender, fixed, _BANK_SUBJECTS, _BANK_OPENERS,
                                 _BANK_CLOSERS, _BANK_BORROWED + _PHISH_HOOKS, ((0.06, _SHARED),))
        return self._compose(email_id, "phishing", sender, fixed, _PHISH_SUBJECTS, _PHISH_OPENERS,
                             _PHISH_CLOSERS, _PHISH_FILLERS, ((0.08, _BANK_BORROWED), (0.06, _SHARED)))

    def _make_campaign(self, email_id: str) -> Email:
        domain = self._pick(CAMPAIGN_DOMAINS)
        sender = f"{self._pick(('invest', 'team', 'info', 'presale', 'support'))}@{domain}"
        campaign_url = f"https://{self._pick(CAMPAIGN_DOMAINS)}/presale?ref={self._pick(self._codes).lower()}"
        fixed = {"campaign_url": campaign_url, "link_url": campaign_url, "shop_url": campaign_url,
                 "spam_url": campaign_url}
        return self._compose(email_id, "campaign", sender, fixed, _CAMPAIGN_SUBJECTS, _CAMPAIGN_OPENERS,
                             _CAMPAIGN_CLOSERS, _CAMPAIGN_FILLERS,
                             ((0.2, _MONEY), (0.2, _SPAM_FILLERS), (0.05, _MARKETING), (0.05, _SHARED)))

    # -- public API -------------------------------------------------------------------
    def make(self, category: str, email_id: str) -> Email:
        """Generate one email of the given category.

        Parameters
        ----------
        category : str
            One of ``simulator.email.CATEGORIES``: ``"personal"``,
            ``"newsletter"``, ``"bank_alert"``, ``"promo"`` (ham) or
            ``"spam"``, ``"phishing"``, ``"campaign"`` (spam).
        email_id : str
            Identifier stored on the returned email.

        Returns
        -------
        Email
            A new email whose ``category`` is ``category``.

        Raises
        ------
        ValueError
            If ``category`` is not a known category.

        Examples
        --------
        >>> f = SyntheticMailFactory(seed=1)
        >>> e = f.make("promo", "p-1")
        >>> (e.email_id, e.category, e.is_spam, len(e.body.split()) >= 15)
        ('p-1', 'promo', False, True)
        >>> f.make("newsletters", "x")
        Traceback (most recent call last):
            ...
        ValueError: unknown email category 'newsletters'; expected one of personal, newsletter, bank_alert, promo, spam, phishing, campaign
        """
        maker = self._makers.get(category)
        if maker is None:
            raise ValueError(f"unknown email category {category!r}; expected one of {', '.join(self._makers)}")
        return maker(email_id)


def category_mix(spam_fraction: float, bank_alert_fraction: float) -> dict[str, float]:
    """Probabilities of the non-campaign categories for ordinary traffic.

    Spam is split 75/25 between ``spam`` and ``phishing``. ``bank_alert`` gets
    ``bank_alert_fraction`` of all mail and the remaining ham is split
    40/30/30 between ``personal``, ``newsletter`` and ``promo``.

    Parameters
    ----------
    spam_fraction : float
        Share of all mail that is spam (``spam`` + ``phishing``), in ``[0, 1]``.
    bank_alert_fraction : float
        Share of all mail that is a bank alert, in ``[0, 1 - spam_fraction]``.

    Returns
    -------
    dict of str to float
        Probabilities keyed by category (ham categories in
        ``HAM_CATEGORIES`` order, then ``spam`` and ``phishing``); they sum
        to 1.

    Raises
    ------
    ValueError
        If a fraction is not a finite number in ``[0, 1]`` or the two
        together exceed 1.

    Examples
    --------
    >>> mix = category_mix(0.4, 0.05)
    >>> {k: round(v, 3) for k, v in mix.items()}
    {'personal': 0.22, 'newsletter': 0.165, 'bank_alert': 0.05, 'promo': 0.165, 'spam': 0.3, 'phishing': 0.1}
    >>> round(sum(mix.values()), 12)
    1.0
    >>> category_mix(0.9, 0.2)
    Traceback (most recent call last):
        ...
    ValueError: spam_fraction + bank_alert_fraction must not exceed 1, got 0.9 + 0.2
    """
    for name, value in (("spam_fraction", spam_fraction), ("bank_alert_fraction", bank_alert_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    other_ham = 1.0 - spam_fraction - bank_alert_fraction
    if other_ham < -1e-12:
        raise ValueError(
            f"spam_fraction + bank_alert_fraction must not exceed 1, got {spam_fraction} + {bank_alert_fraction}"
        )
    other_ham = max(other_ham, 0.0)
    return {
        "personal": 0.4 * other_ham,
        "newsletter": 0.3 * other_ham,
        "bank_alert": float(bank_alert_fraction),
        "promo": 0.3 * other_ham,
        "spam": 0.75 * spam_fraction,
        "phishing": 0.25 * spam_fraction,
    }
