//! The partner's error codes the simulator answers with by itself, and the
//! Russian texts the partner's document gives for every code.

/// The customer already has an application under review.
pub(crate) const ALREADY_PENDING: &str = "1000";

/// The request id was used before.
pub(crate) const DUPLICATE_REQUEST_ID: &str = "1002";

/// No application with this request id.
pub(crate) const NOT_FOUND: &str = "1003";

/// The application is under review.
pub(crate) const UNDER_REVIEW: &str = "1005";

/// The product (card) is not supported.
pub(crate) const UNSUPPORTED_CARD: &str = "1008";

/// The partner's text for a code; a generic "error" for codes it does not list.
pub(crate) fn message(code: &str) -> &'static str {
    match code {
        "1000" => {
            "У вас уже есть заявка на открытие виртуальной карты. \
             Пожалуйста, подождите, пока эта заявка будет рассмотрена."
        }
        "1002" => "RequestId должен быть уникальным",
        "1003" => "Заявка не найдена",
        "1005" => "Заявка на рассмотрении",
        "1006" => "ЛИЦО БЕЗ ГРАЖДАНСТВА",
        "1007" => "Сервис Нумо временно недоступен. Попробуйте повторить ваш запрос немного позже",
        "1008" => "Эта карта не поддерживается",
        "1009" => "Сервис временно недоступен",
        _ => "Ошибка",
    }
}
