import { StyleSheet, Text, TextInput, type TextInputProps, View } from 'react-native';

import { TOUCH, useTheme } from './theme';

/** A text input with a visible label that stays when the field is filled (placeholders vanish). */
export function Field({ label, ...input }: { label: string } & TextInputProps) {
  const theme = useTheme();
  return (
    <View style={styles.field}>
      <Text style={[styles.label, { color: theme.text }]}>{label}</Text>
      <TextInput
        accessibilityLabel={label}
        placeholderTextColor={theme.muted}
        autoCorrect={false}
        {...input}
        style={[styles.input, { color: theme.text, borderColor: theme.border, backgroundColor: theme.card }]}
      />
    </View>
  );
}

const styles = StyleSheet.create({
  field: { gap: 6 },
  label: { fontSize: 16, fontWeight: '600' },
  input: { minHeight: TOUCH, borderWidth: 1, borderRadius: 10, paddingHorizontal: 12, fontSize: 16 },
});
